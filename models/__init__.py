"""Reference models built from condnorm layers: networks, losses, data and Lightning modules."""
