"""Reading and writing PEFT adapter files: ``adapter_config.json``,
``adapter_model.safetensors`` (header parsed without torch) and the legacy
``adapter_model.bin``."""

WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_WEIGHTS_NAME = "adapter_model.bin"
CONFIG_NAME = "adapter_config.json"
