"""The BERT text path (config.text_path="bert")."""

from m3sa_tf.text.bert_text_encoder import BertTextEncoder, load_bert_backbone

__all__ = ["BertTextEncoder", "load_bert_backbone"]
