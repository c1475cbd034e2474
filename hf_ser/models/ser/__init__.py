"""The Hub "remote code" trio: configuration, feature extractor and model of the SER attention 1D-CNN.

These three files import only numpy, torch, transformers and each other; ``save_pretrained`` copies
them into every model folder, so a checkpoint loads with ``trust_remote_code=True`` without hf-ser.
"""

from .configuration_ser import SERConfig
from .feature_extraction_ser import SERFeatureExtractor
from .modeling_ser import SERForAudioClassification, SERModel, SERPreTrainedModel

__all__ = ["SERConfig", "SERFeatureExtractor", "SERForAudioClassification", "SERModel", "SERPreTrainedModel"]
