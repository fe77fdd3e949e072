"""File bytes to pixels: images (Pillow) and DICOM (pydicom), the failures they report, and the
process pool `prepare` decodes with. The same decoding serves training and the service."""
