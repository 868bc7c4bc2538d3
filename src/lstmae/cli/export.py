"""`lstmae export`: one model directory -> one ONNX file (see lstmae.export). Parse, call, print."""
from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    """Add the `export` command to the `lstmae` group (once; a second call does nothing)."""
    if "export" in cli.commands:
        return

    @cli.command("export")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
                  help="The ONNX file to write, e.g. model.onnx.")
    @click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
    @click.option("--opset", type=int, default=None,
                  help="ONNX opset version (>= 18; default: the exporter's).")
    def export(model_dir, output, overwrite, opset):
        """Export a model to ONNX: raw windows in, anomaly scores and reconstructions out.

        The graph takes x (batch, window, features) float32 in the data's own units (any batch
        size; the model's window and features) and gives score (batch,), higher = more anomalous,
        and reconstruction (batch, window, features). The scaler and the error model are inside;
        the threshold, window and feature names are in the file's metadata. Before the file is
        written, onnxruntime must give lstmae's scores (within 1e-5). Token models are refused.
        Needs the export extra: pip install 'lstmae[export]'.

        \b
        Example:
          lstmae export model -o model.onnx
          python -c "import onnxruntime as ort, numpy as np; s = ort.InferenceSession('model.onnx'); \\
            print(s.run(['score'], {'x': np.zeros((4, 140, 1), np.float32)})[0])"
        """
        from ..export import export_onnx
        from ..estimator import load
        from .main import check_output

        check_output(output, overwrite, model_dir=model_dir)  # before loading: fail fast
        result = export_onnx(load(model_dir), output, opset=opset, overwrite=overwrite)
        click.echo(f"wrote {result.path} (opset {result.opset}; onnxruntime's scores within "
                   f"{result.max_score_difference:.2g} of lstmae's)", err=True)
