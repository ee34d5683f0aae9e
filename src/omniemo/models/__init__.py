"""Omni language models: HumanOmni (R1-Omni's architecture) and the Qwen2.5-Omni thinker, with their processors."""
