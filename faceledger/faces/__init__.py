"""Face stages: decode -> detect -> align -> embed (pipeline), and the model backends."""
