"""Foundation models and the data they embed: backbones and where they come from, the demo CNN,
embedding with Lightning, built-in and own data sets, and embeddings on disk."""
