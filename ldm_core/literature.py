"""Published results on digit69, quoted with their sources -- never measured here, never in a measured column.

Each entry of :data:`PUBLISHED` names a method evaluated on this dataset (the 6/9 handwritten-digit fMRI data of
van Gerven et al. 2010 with the 90/10 split distributed with the DGMM code), the paper, where its numbers were
looked for, the numbers found (``None`` where none could be found: no number is ever filled in from memory),
and what differs from this study's evaluation. :data:`OUR_METRICS` states this study's definitions, so every
comparison row can name the differences that matter: windowed (Gaussian 11x11) vs global SSIM, per-image vs
pooled correlation, images on a 0-1 vs 0-255 scale (PSNR and MSE depend on it), mean over test images vs
other averages.

:data:`REPORT_LITERATURE` holds the analysed report's own "literature comparison" rows (claim 15), which the
report gives without a source.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["OUR_METRICS", "PUBLISHED", "REPORT_LITERATURE", "published_table"]

OUR_METRICS = (
    "This study: images in [0, 1]; PSNR = 10 log10(1 / MSE) per image; SSIM windowed (Gaussian, sigma 1.5, "
    "scikit-image, data range 1) per image; pixel r = Pearson r per image; all averaged over the 10 test "
    "images (95% bootstrap CI over images); the official 90/10 split, no test fMRI used except as the input "
    "of its own reconstruction."
)

# One dict per published method. values: metric -> number as printed in the source, or None (not found).
PUBLISHED: tuple[dict, ...] = (
    {
        "method": "DGMM (deep generative multi-view model)",
        "paper": ("C. Du, C. Du, H. He, 'Sharing deep generative representation for perceived image reconstruction "
                  "from human brain activity', IJCNN 2017 (IEEE Xplore 7965968; arXiv:1704.07575); "
                  "C. Du, C. Du, L. Huang, H. He, 'Reconstructing perceived images from human brain activities with "
                  "Bayesian deep multiview learning', IEEE TNNLS 2019 (doi:10.1109/TNNLS.2018.2882456)"),
        "code": "github.com/ChangdeDu/DGMM (DGMM_Keras.py, calculateS.m; commit 286503c7)",
        "values": {"psnr": None, "ssim": None, "pixel_r": None, "mse": None},
        "status": ("not found: the stored copies of both papers reachable from this study (arXiv, deepai, groundai "
                   "pages) gave abstracts and introductions, not the results tables; the repository shows its "
                   "results only as an image (69results.png)"),
        "how computed": (
            "From the reference code: the same data file and 90/10 split as here; fMRI scaled per voxel to [0, 1] "
            "by a min-max scaler fitted on the training trials, images divided by 255 (0-1 scale); a test image is "
            "the mean of L = 100 images decoded from samples of the latent posterior (compare our n_samples "
            "averaging). At inference the posterior of a test trial is pulled toward the latents of its k = 10 "
            "nearest training trials in fMRI space (posterior regularisation, heat-kernel weights). This uses the "
            "test fMRI beyond the decoder, but one test trial at a time: calculateS.m builds the neighbours from "
            "[training fMRI; that one test trial], so no other test trial enters (not transductive across the "
            "test set in the code). The papers' metric definitions (SSIM window, correlation per image or pooled) "
            "could not be checked."
        ),
    },
    {
        "method": "Shape-Semantic GAN",
        "paper": ("T. Fang, Y. Qi, G. Pan, 'Reconstructing perceptive images from brain activity by Shape-Semantic "
                  "GAN', NeurIPS 2020 (arXiv:2101.12083)"),
        "code": ("github.com/duolala1/Reconstructing-Perceptive-Images-from-Brain-Activity-by-Shape-Semantic-GAN "
                 "(README: the demo takes the published fMRI data '69-digits' as input)"),
        "values": {"psnr": None, "ssim": None, "pixel_r": None, "mse": None},
        "status": "not found: only the abstract was reachable; the repository shows results as images",
        "how computed": "Not checked (paper text not reachable); its demo code uses its own train/validation folders.",
    },
)

# The report's "Literature comparison" table (claim 15), quoted; the report names no paper for these rows.
REPORT_LITERATURE: tuple[dict, ...] = (
    {"method": "Basic CNN", "dataset size": "1000+", "psnr": "15-20 dB", "ssim": "0.3-0.5",
     "source": "the analysed report, 'Benchmarking context' (no paper cited)"},
    {"method": "Advanced GAN", "dataset size": "5000+", "psnr": "20-25 dB", "ssim": "0.5-0.7",
     "source": "the analysed report, 'Benchmarking context' (no paper cited)"},
)


def published_table() -> pd.DataFrame:
    """:data:`PUBLISHED` as a table: numbers as reported (or 'not found'), source, status and caveats."""
    rows = {}
    for e in PUBLISHED:
        row = {f"{m} (as reported)": ("not found" if v is None else v) for m, v in e["values"].items()}
        row.update({"paper": e["paper"], "status": e["status"], "how computed / differences": e["how computed"]})
        rows[e["method"]] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("published method")
