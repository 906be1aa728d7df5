"""SDM (Wang et al. 2022): a diffusion UNet whose decoder takes the mask through ``SPADEGroupNorm``.

Networks and maths only: the UNet (:class:`SDMUNet`, sizes in :data:`SIZES`), its blocks, the noise
schedule (:class:`NoiseSchedule`), the DDIM update with classifier-free guidance (:func:`ddim_sample`)
and :class:`DDIMSampler`, which turns a denoiser into a mask → image generator.
"""

from .attention import AttentionBlock
from .blocks import SDMResBlock
from .ddim import classifier_free_guidance, ddim_sample, ddim_step, ddim_timesteps
from .embedding import timestep_embedding
from .resample import Downsample, Upsample
from .sampler import DDIMSampler
from .schedule import PREDICTIONS, SCHEDULES, NoiseSchedule, beta_schedule
from .unet import SIZES, SDMUNet

__all__ = [
    "PREDICTIONS",
    "SCHEDULES",
    "SIZES",
    "AttentionBlock",
    "DDIMSampler",
    "Downsample",
    "NoiseSchedule",
    "SDMResBlock",
    "SDMUNet",
    "Upsample",
    "beta_schedule",
    "classifier_free_guidance",
    "ddim_sample",
    "ddim_step",
    "ddim_timesteps",
    "timestep_embedding",
]
