"""G-side content terms (`content=`): what an image-conditioned G is asked besides fooling D. One module per
option: `content=l1` <-> ganlab/content/l1.py."""
