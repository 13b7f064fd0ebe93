"""Autoencoders: an encoder to a small latent vector and a decoder back to the input."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlcli.blocks import make_activation


class AutoEncoder(nn.Module):
    """encoder: input -> latent; decoder: latent -> (B, out_features), the flattened reconstruction.

    ``noise`` > 0 makes it a denoising autoencoder: gaussian noise of that standard deviation is
    added to the input while training, and the loss still compares with the clean input.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, noise: float = 0.0) -> None:
        super().__init__()
        self.encoder, self.decoder, self.noise = encoder, decoder, noise

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        return self.decoder(self.encoder(x))


class EncoderHead(nn.Module):
    """An autoencoder's encoder with a head on its latent code, for any task but reconstruction.

    Its ``encoder.*`` tensors are named as in :class:`AutoEncoder`, so ``model.pretrained`` loads a
    pretrained autoencoder's encoder into it and the head (``head.*``) starts fresh.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, noise: float = 0.0) -> None:
        super().__init__()
        self.encoder, self.head, self.noise = encoder, head, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        return self.head(self.encoder(x))  # (B, latent) -> (B, out_features)


def dense_autoencoder(in_shape: tuple[int, ...], out_features: int, hidden: list[int], latent: int,
                      activation: str, output: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Encoder Linear layers down through ``hidden`` to ``latent``; the decoder mirrors them."""
    widths = [math.prod(in_shape), *hidden]
    enc: list[nn.Module] = [nn.Flatten()]  # (B, *in_shape) -> (B, F)
    for a, b in zip(widths, widths[1:], strict=False):
        enc += [nn.Linear(a, b), make_activation(activation)]
    enc.append(nn.Linear(widths[-1], latent))  # (B, latent): no activation, a free code
    back = [latent, *reversed(hidden)]
    dec: list[nn.Module] = []
    for a, b in zip(back, back[1:], strict=False):
        dec += [nn.Linear(a, b), make_activation(activation)]
    dec += [nn.Linear(back[-1], out_features), output]
    return nn.Sequential(*enc), nn.Sequential(*dec)


def conv_autoencoder(in_shape: tuple[int, ...], out_features: int, channels: list[int], latent: int,
                     activation: str, output: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Stride-2 convolutions down to a latent vector; upsampling convolutions back to (C, H, W)."""
    c, h, w = in_shape
    enc: list[nn.Module] = []
    width, size = c, (h, w)
    for ch in channels:
        enc += [nn.Conv2d(width, ch, 3, stride=2, padding=1), make_activation(activation)]
        width, size = ch, ((size[0] + 1) // 2, (size[1] + 1) // 2)  # stride 2 halves, rounding up
    flat = width * size[0] * size[1]
    enc += [nn.Flatten(), nn.Linear(flat, latent)]  # (B, C', h', w') -> (B, latent)
    dec: list[nn.Module] = [nn.Linear(latent, flat), make_activation(activation), nn.Unflatten(1, (width, *size))]
    for ch in [*reversed(channels[:-1]), channels[0]]:
        dec += [nn.Upsample(scale_factor=2), nn.Conv2d(width, ch, 3, padding=1), make_activation(activation)]
        width = ch
    dec += [nn.Upsample(size=(h, w)), nn.Conv2d(width, c, 3, padding=1), nn.Flatten()]  # back to (B, C*H*W)
    if out_features != c * h * w:  # not reconstructing: a head to the requested width
        dec.append(nn.Linear(c * h * w, out_features))
    dec.append(output)
    return nn.Sequential(*enc), nn.Sequential(*dec)
