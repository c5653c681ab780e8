"""Training of the segmentation and matting nets on CPU (or a lent GPU), resumable."""
