"""Data sources, the sequence record format, device-resident datasets and augmentation."""
