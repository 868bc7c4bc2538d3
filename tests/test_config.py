"""One source for the estimator's parameters: lstmae.config.PARAMETERS. The estimator's signature and
docstring, `make_architecture` and `lstmae fit`'s options must all agree with it."""
import inspect

from lstmae import LSTMAutoencoder
from lstmae.cli.main import fit, summary
from lstmae.config import ARCHITECTURE_PARAMS, PARAMETERS, make_architecture


def test_the_estimator_signature_is_the_parameter_table():
    signature = inspect.signature(LSTMAutoencoder.__init__).parameters
    names = [name for name in signature if name != "self"]
    assert names == [p.name for p in PARAMETERS]
    for p in PARAMETERS:
        assert signature[p.name].default == p.default, p.name
        assert f"{p.name} : {p.type}, default={p.default!r}" in LSTMAutoencoder.__doc__


def test_make_architecture_takes_exactly_the_architecture_parameters():
    signature = list(inspect.signature(make_architecture).parameters)
    assert signature[0] == "n_features" and tuple(signature[1:]) == ARCHITECTURE_PARAMS
    defaults = {p.name: p.default for p in PARAMETERS}
    for name, parameter in inspect.signature(make_architecture).parameters.items():
        if name != "n_features":
            assert parameter.default == defaults[name], name


def test_every_cli_parameter_is_an_option_of_fit_and_architecture_ones_of_summary():
    fit_options = {param.name for param in fit.params}
    summary_options = {param.name for param in summary.params}
    for p in PARAMETERS:
        assert (p.name in fit_options) == p.cli, p.name
        assert (p.name in summary_options) == (p.cli and p.architecture), p.name
    by_name = {param.name: param for param in fit.params}
    for p in PARAMETERS:
        if p.cli and p.choices:
            assert tuple(by_name[p.name].type.choices) == p.choices
