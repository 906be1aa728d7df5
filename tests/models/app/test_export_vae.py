"""The VAE generator (segmap and z in) and its image encoder, exported separately."""

from __future__ import annotations

import pytest

from models.app.export.verify import parity
from tests.models.app.export_cases import FORMAT_IDS, FORMATS, GENERATOR_SPECS

pytestmark = pytest.mark.filterwarnings("ignore:.*is deprecated:FutureWarning")  # torch.jit in torch 2.14


@pytest.mark.parametrize(("fmt", "dynamo"), FORMATS, ids=FORMAT_IDS)
def test_vae_generator_takes_z_and_matches_eager(fmt: str, dynamo: bool) -> None:
    spec = GENERATOR_SPECS["SPADEGenerator-vae"]()
    assert spec.input_names == ("ids", "z")
    assert parity(spec, fmt, dynamo=dynamo) <= 1e-4


@pytest.mark.parametrize(("fmt", "dynamo"), FORMATS, ids=FORMAT_IDS)
def test_encoder_matches_eager_at_other_batch_and_image_size(fmt: str, dynamo: bool) -> None:
    spec = GENERATOR_SPECS["ConvEncoder"]()
    assert spec.output_names == ("mu", "logvar")
    assert parity(spec, fmt, dynamo=dynamo) <= 1e-4
