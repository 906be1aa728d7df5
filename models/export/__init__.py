"""Export trained networks to ONNX, TorchScript, ``torch.export`` and safetensors, and run them."""
