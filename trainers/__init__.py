"""cubestream trainers (X5): Model / Setting / Task on PyTorch Lightning."""
