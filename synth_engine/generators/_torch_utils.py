"""Torch pieces of the DP-TVAE generator: the conditional VAE network and a deterministic context.

Pure numeric code (torch only, no Django). The network follows TVAE (Xu et al. 2019, "Modeling
Tabular Data using Conditional GAN", Sec. 4.3 and App. "TVAE"): an MLP encoder q(z | x, y) and an
MLP decoder p(x | z, y) trained on the evidence lower bound. Every column arrives as an integer
*code* (a category, or a cell of a public numeric grid, see :mod:`synth_engine.generators.domain`),
so the decoder outputs one softmax per column and the reconstruction term is a sum of
cross-entropies. The label's one-hot is an input of both networks (a conditional VAE, Sohn et al.
2015), which is what lets :meth:`DPTVAEGenerator.sample` condition on the label without rejection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional


class TabularCVAE(nn.Module):
    """Conditional VAE over integer-coded columns.

    Parameters
    ----------
    code_sizes : sequence of int
        Number of codes of each column, in frame order (the label included).
    label_index : int or None
        Position of the label column; ``None`` trains an unconditional VAE.
    embedding_dim : int
        Size of the latent vector z.
    hidden_dims : sequence of int
        Widths of the hidden layers; the decoder mirrors the encoder.
    loss_factor : float
        Weight of the reconstruction term against the KL term (TVAE's ``loss_factor``).
    """

    def __init__(
        self,
        code_sizes: Sequence[int],
        label_index: int | None,
        embedding_dim: int,
        hidden_dims: Sequence[int],
        loss_factor: float,
    ) -> None:
        super().__init__()
        self.code_sizes = [int(size) for size in code_sizes]
        self.label_index = label_index
        self.loss_factor = float(loss_factor)
        self.offsets = [int(offset) for offset in np.cumsum([0] + self.code_sizes[:-1])]
        self.features = [i for i in range(len(self.code_sizes)) if i != label_index]
        self.label_size = self.code_sizes[label_index] if label_index is not None else 0
        output_size = sum(self.code_sizes[i] for i in self.features)
        self.encoder = _mlp(sum(self.code_sizes), hidden_dims)
        self.mean = nn.Linear(hidden_dims[-1], embedding_dim)
        self.log_variance = nn.Linear(hidden_dims[-1], embedding_dim)
        self.decoder = _mlp(embedding_dim + self.label_size, list(hidden_dims)[::-1])
        self.output = nn.Linear(hidden_dims[-1], output_size)

    def one_hot(self, codes: torch.Tensor) -> torch.Tensor:
        """Concatenated one-hot encoding of ``codes`` (n_rows, n_columns) -> (n_rows, Σ sizes)."""
        index = codes + torch.tensor(self.offsets, dtype=codes.dtype)
        encoded = torch.zeros(codes.shape[0], sum(self.code_sizes))
        return encoded.scatter_(1, index, 1.0)

    def label_one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """One-hot of the label codes (n_rows,) -> (n_rows, label_size); empty without a label."""
        if self.label_index is None:
            return torch.zeros(labels.shape[0], 0)
        return functional.one_hot(labels, self.label_size).to(torch.float32)

    def decode_logits(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits of every feature column, concatenated: (n_rows, Σ feature sizes)."""
        hidden = self.decoder(torch.cat([latent, self.label_one_hot(labels)], dim=1))
        return self.output(hidden)

    def forward(self, codes: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-row negative ELBO, shape (n_rows,): loss_factor · Σ cross-entropy + KL.

        ``noise`` (n_rows, embedding_dim) is the reparameterisation's N(0, I) draw, passed in so
        that the caller's seeded generator controls it (Kingma & Welling 2014, Sec. 2.4).
        """
        hidden = self.encoder(self.one_hot(codes))
        mean, log_variance = self.mean(hidden), self.log_variance(hidden).clamp(-10.0, 10.0)
        latent = mean + noise * torch.exp(0.5 * log_variance)
        labels = codes[:, self.label_index] if self.label_index is not None else codes[:, 0]
        logits = self.decode_logits(latent, labels)
        reconstruction = torch.zeros(codes.shape[0])
        start = 0
        for column in self.features:
            stop = start + self.code_sizes[column]
            reconstruction = reconstruction + functional.cross_entropy(
                logits[:, start:stop], codes[:, column], reduction="none"
            )
            start = stop
        kl = -0.5 * (1.0 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)
        return self.loss_factor * reconstruction + kl

    def feature_probabilities(self, latent: torch.Tensor, labels: torch.Tensor) -> list[np.ndarray]:
        """Softmax of each feature column for given latents and label codes (no gradients)."""
        with torch.no_grad():
            logits = self.decode_logits(latent, labels)
        probabilities, start = [], 0
        for column in self.features:
            stop = start + self.code_sizes[column]
            probabilities.append(torch.softmax(logits[:, start:stop], dim=1).double().numpy())
            start = stop
        return probabilities


class PerRowLoss(nn.Module):
    """Identity "criterion" over the network's per-row losses, for Opacus's ghost clipping.

    Ghost clipping (Li et al. 2022, Sec. 4; Bu et al. 2023) needs the per-row losses to run two
    backward passes: one for the per-row gradient norms (for a linear layer fed one row at a
    time, ‖g aᵀ‖ = ‖g‖·‖a‖), one for the clipped sum. Opacus switches ``reduction`` to ``"none"``
    to obtain them.
    """

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, per_row: torch.Tensor) -> torch.Tensor:
        if self.reduction == "none":
            return per_row
        return per_row.sum() if self.reduction == "sum" else per_row.mean()


def _mlp(input_size: int, widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(input_size, width), nn.ReLU()]
        input_size = width
    return nn.Sequential(*layers)


@contextlib.contextmanager
def deterministic_torch(seed: int, num_threads: int) -> Iterator[None]:
    """Run a block with torch's CPU RNG seeded, deterministic kernels and a fixed thread count.

    The global RNG state, thread count and determinism flag are restored afterwards, so a fit
    leaves the caller's torch settings as it found them. A fixed thread count matters: float
    reductions split over a different number of threads can round differently.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)


def sample_codes(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one code per row.

    Parameters
    ----------
    probabilities : ndarray of shape (n_rows, n_codes), rows summing to 1
    uniforms : ndarray of shape (n_rows,), U(0, 1) draws

    Returns
    -------
    ndarray of int64, shape (n_rows,)
    """
    cumulative = np.cumsum(probabilities, axis=1)
    codes = (cumulative < uniforms[:, None] * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(codes, probabilities.shape[1] - 1).astype(np.int64)
