"""Media: product images and video, uploaded by staff, processed by workers, delivered through signed URLs."""
