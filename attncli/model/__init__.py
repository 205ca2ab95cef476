"""Real pretrained transformers (BERT and GPT-2 families) from local folders, run on attncli's
own engines so that every layer's attention is an ordinary AttentionResult."""

from attncli.model.transformer import TransformerModel, default_model_dir, load_model

__all__ = ["TransformerModel", "default_model_dir", "load_model"]
