"""Training recipes. Each is a plain function over plain data, with its CLI under `omniemo train`."""
