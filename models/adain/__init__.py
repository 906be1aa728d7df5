"""AdaIN arbitrary style transfer: normalised-VGG encoder, decoder, user controls, official weights."""

from .networks import AdaINDecoder, NormalisedVGG, encoder_state_dict
from .style_transfer import StyleTransfer

__all__ = ["AdaINDecoder", "NormalisedVGG", "StyleTransfer", "encoder_state_dict"]
