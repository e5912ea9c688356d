"""Linear layers in int8 for the local judge on a CPU (imports torch: load it only when used)."""

from __future__ import annotations

import torch


class Int8Linear(torch.nn.Module):
    """``linear`` in int8: weights quantised once per output channel, each input row quantised
    on the fly by its own largest absolute value, then one int8 x int8 -> int32 matmul
    (torch._int_mm: VNNI on this EPYC).

    Per-row (per-token) scales, not one per tensor: SmolLM2's activations have rows far
    larger than others, and torch's dynamic quantisation (one scale per tensor) moved P(a)
    by up to 0.33 on PandaLM's long pairs. The int32 product goes to ``out_dtype`` before
    it is scaled: scaling the int32 tensor by float32 scales took longer than the matmul.
    Measured alone (one thread, 1024 rows): 576->576 2.6 ms against 3.7 in bfloat16,
    1536->576 6.5 against 9.2.
    """

    def __init__(self, linear: torch.nn.Linear, out_dtype: torch.dtype = torch.bfloat16,
                 weight: torch.Tensor | None = None):
        super().__init__()
        weight = (linear.weight if weight is None else weight).detach().float()  # shape (out, in)
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127  # shape (out,)
        # (in, out) as a transposed view of the (out, in) matrix: _int_mm ran faster so.
        self.register_buffer("weight_t", (weight / scale[:, None]).round().to(torch.int8).t())
        self.register_buffer("scale", scale.to(out_dtype))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(out_dtype))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        scale = rows.abs().amax(dim=-1, keepdim=True).float().clamp_(min=1e-12).div_(127)  # shape (rows, 1)
        quantised = torch.div(rows, scale).round_().to(torch.int8)
        out = torch._int_mm(quantised, self.weight_t).to(self.scale.dtype)  # shape (rows, out)
        out.mul_(scale.to(self.scale.dtype)).mul_(self.scale)
        if self.bias is not None:
            out += self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def smoothed_mlp_weights(decoder: torch.nn.Module, calibration: list[list[int]],
                         alpha: float = 0.5) -> dict[str, torch.Tensor]:
    """New weights for each MLP's up_proj and down_proj that compute the same function with
    down_proj's input channels evened out (SmoothQuant, Xiao et al. 2023, alpha 0.5).

    down_proj's input (act(gate) * up) has channels far larger than the rest: on a judging
    prompt SmolLM2's largest is 2,700x the median channel in layer 11. One scale per row
    then leaves the other channels a few int8 steps. Channel j is divided by
    s_j = peak_j^alpha / max|W_down[:, j]|^(1 - alpha), peak_j its largest absolute value
    on the ``calibration`` token rows, and down_proj's column j multiplied by s_j; the
    division is folded into up_proj's row j, which int8 quantises per row anyway, so it
    costs nothing at run time. Measured on 8 of PandaLM's long pairs (the judge's P(a)
    against float32): largest difference 0.22 unsmoothed.
    """
    mlps = {name: module for name, module in decoder.named_modules()
            if isinstance(getattr(module, "up_proj", None), torch.nn.Linear)
            and isinstance(getattr(module, "down_proj", None), torch.nn.Linear)}
    peaks: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(module, inputs):
            seen = inputs[0].detach().float().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0)
            peaks[name] = seen if name not in peaks else torch.maximum(peaks[name], seen)
        return hook

    hooks = [mlp.down_proj.register_forward_pre_hook(record(name)) for name, mlp in mlps.items()]
    try:
        with torch.inference_mode():
            for ids in calibration:
                decoder(input_ids=torch.tensor([ids], device=next(decoder.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    weights = {}
    for name, mlp in mlps.items():
        down = mlp.down_proj.weight.detach().float()  # shape (hidden, intermediate)
        smoothing = (peaks[name].clamp(min=1e-5) ** alpha
                     / down.abs().amax(dim=0).clamp(min=1e-5) ** (1 - alpha))  # shape (intermediate,)
        weights[f"{name}.up_proj"] = mlp.up_proj.weight.detach().float() / smoothing[:, None]
        weights[f"{name}.down_proj"] = down * smoothing[None, :]
    return weights
