"""G copies of one model that differ in a few entries, evaluated in one forward (SAL, per-channel SAL, surfaces).

`Copies(model, moved)` runs the model for G stacked values of the entries in `moved` (one layer's weight for
SAL, every parameter for a surface) and the model's other entries fixed:

  * split (`torch.fx`): the traced graph is cut where the moved entries first enter; the frozen prefix (every
    node that depends on the data only) runs once per data batch (`Copies.prefix`, no grad) and only the
    suffix runs for the G copies, so a backward stops at the moved layer. The suffix runs
      - "fold" when one Conv2d/Linear moves and every later node is a per-sample op of a known kind: the
        layer runs once with G x its output channels, the copies are moved into the batch, and the rest of
        the network runs as itself on G x B rows (other prefix values, e.g. a residual's shortcut input, are
        tiled G times);
      - "plan" for a plain `nn.Sequential` (`SequentialPlan`: grouped convolutions, batched matmuls);
      - "vmap" otherwise (`torch.func.vmap` over `functional_call` of the suffix).
  * A model that `torch.fx` cannot trace (data-dependent control flow) runs whole, through vmap, with a
    one-line `CopiesFallback` warning naming the model; an op that vmap cannot batch falls back, with the same
    notice, to one copy at a time ("loop"). Only those specific failures are caught: any other error (an
    out-of-memory error, a shape error) propagates.

Every value is computed from the same weights in every layout; layouts agree to float rounding (tests hold
fold, plan and vmap to the per-copy loop).
"""

from __future__ import annotations

import contextlib
import operator
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.func import functional_call, vmap

Weights = Mapping[str, torch.Tensor]


class CopiesFallback(UserWarning):
    """A faster layout of `Copies` could not run this model; a slower, general one is used."""


class _Unsupported(Exception):
    """`SequentialPlan` cannot run this model."""


# --------------------------------------------------------------------------------------------------
# the split: frozen prefix and moved suffix of a traced graph


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Identity,
                nn.Dropout, nn.Dropout2d, nn.Hardtanh, nn.ReLU6, nn.Mish)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_PER_SAMPLE_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten, *_ELEMENTWISE, *_POOLS)
_PER_SAMPLE_FUNCTIONS: tuple[Any, ...] = (operator.add, operator.mul, operator.sub, torch.add, torch.mul, torch.relu,
                                          F.relu, torch.sigmoid, torch.tanh)
_PER_SAMPLE_METHODS = ("relu", "sigmoid", "tanh", "add", "mul", "__add__", "__mul__")
# flatten and reductions: per-sample when every dimension they act on is past the batch (checked per node)
_REDUCTION_FUNCTIONS: tuple[Any, ...] = (torch.flatten, torch.mean, torch.sum, torch.amax)
_REDUCTION_METHODS = ("flatten", "mean", "sum", "amax")


@dataclass
class Frozen:
    """The prefix's values on one data batch: what the suffix needs from the frozen part of the network.

    Attributes:
        values: one value per suffix input (tensors (B, ...) where `batched`, else as computed).
        batched: True where the value comes from the data (its first dimension is the batch).
    """

    values: tuple[Any, ...]
    batched: tuple[bool, ...]

    def select(self, idx: torch.Tensor) -> Frozen:
        """The rows `idx` of every batched value (a mini-batch of a prefix computed once for a whole set)."""
        return Frozen(tuple(v[idx] if b else v for v, b in zip(self.values, self.batched, strict=True)),
                      self.batched)


def _owner(name: str, modules: Mapping[str, nn.Module]) -> str:
    """The module path that holds entry `name` ("layers.0.conv1.weight" -> "layers.0.conv1")."""
    head = name.rsplit(".", 1)[0] if "." in name else ""
    return head if head in modules else ""


class _Split:
    """A traced model cut at the entries `moved`: `prefix` (data -> frozen values) and `suffix` (frozen -> output).

    Raises `fx.proxy.TraceError` when the model cannot be traced.
    """

    def __init__(self, traced: fx.GraphModule, moved: Sequence[str]) -> None:
        modules = dict(traced.named_modules())
        moved_set = set(moved)
        owners = {_owner(n, modules) for n in moved}
        graph = traced.graph
        depends: set[fx.Node] = set()  # nodes whose value changes with the moved entries
        data: set[fx.Node] = set()  # nodes whose value comes from the data
        for node in graph.nodes:
            inputs = node.all_input_nodes
            if node.op == "placeholder":
                data.add(node)
            elif any(i in depends for i in inputs) or (node.op == "get_attr" and node.target in moved_set) or (
                    node.op == "call_module" and any(o == node.target or o.startswith(f"{node.target}.")
                                                     for o in owners)):
                depends.add(node)
            if any(i in data for i in inputs):
                data.add(node)
        frontier = [n for n in graph.nodes if n not in depends and n.op != "output"
                    and any(u in depends for u in n.users)]
        output = next(n for n in graph.nodes if n.op == "output")
        self.first = [n for n in graph.nodes if n in depends and not any(i in depends for i in n.all_input_nodes)]
        self.batched = tuple(n in data for n in frontier)

        pre = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        for node in graph.nodes:
            if node.op != "output" and node not in depends:
                env[node] = pre.node_copy(node, lambda n: env[n])
        pre.output(tuple(env[n] for n in frontier))
        self.prefix_module = fx.GraphModule(traced, pre)
        self.prefix_module.graph.eliminate_dead_code()
        _exact_fast_pools(self.prefix_module)  # recompiles
        self.root, self.frontier, self.depends, self.graph, self.modules = traced, frontier, depends, graph, modules
        self.output = output

    def suffix(self, start: fx.Node | None = None) -> tuple[fx.GraphModule, list[int]]:
        """The moved part as a module, and the positions (in `frontier`) of the frozen values it takes.

        With `start` (a moved node), the module begins after it: its first input is the value of `start`.
        """
        post = fx.Graph()
        env: dict[fx.Node, fx.Node] = {} if start is None else {start: post.placeholder("start")}
        inputs = [i for i, n in enumerate(self.frontier)
                  if start is None or any(u in self.depends and u is not start for u in n.users)]
        for i in inputs:
            env[self.frontier[i]] = post.placeholder(f"frozen_{i}")
        for node in self.graph.nodes:
            if node in self.depends and node.op != "output" and node is not start:
                env[node] = post.node_copy(node, lambda n: env[n])
        post.output(fx.node.map_arg(self.output.args[0], lambda n: env[n]))
        return fx.GraphModule(self.root, post), inputs

    def prefix(self, x: torch.Tensor, fixed: Weights) -> Frozen:
        with torch.no_grad():
            values = functional_call(self.prefix_module, _own(self.prefix_module, fixed), (x,))
        return Frozen(tuple(values), self.batched)


def _exact_fast_pools(graph_module: fx.GraphModule) -> None:
    """Run the graph's 2D pools in faster CPU forms that give the same bits (in place; recompiles).

    Measured on the digits `cnn`'s shapes (2-core AMD EPYC, one thread, no grad): `adaptive_avg_pool2d` to its
    input's own size (every window one element) takes 2.7 ms on (2048, 32, 2, 2) where a copy takes 0.023 ms
    (x119), and a max pool of an NCHW (2048, 16, 8, 8) takes 9.45 ms, 2.39 ms through channels-last (x3.96;
    ATen's NCHW max-pool kernel is slow on small images).
    Both are exact: an average of one element is that element, and a maximum, with its index (ties: the first
    in scan order, the same in both layouts), does not depend on the memory layout. With grad the max pool stays
    as it is (its backward in channels-last costs more than it saves). Used on the plain-run parts of the split
    (the frozen prefix and the fold's rest), not under vmap.
    """
    modules = dict(graph_module.named_modules())
    for node in graph_module.graph.nodes:
        mod = modules.get(str(node.target)) if node.op == "call_module" else None
        if type(mod) is nn.AdaptiveAvgPool2d:
            node.op, node.target, node.args = "call_function", _adaptive_avg_pool2d, (*node.args, mod.output_size)
        elif type(mod) is nn.MaxPool2d and not mod.return_indices:
            node.op, node.target = "call_function", _max_pool2d
            node.args = (*node.args, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)
    graph_module.recompile()


def _adaptive_avg_pool2d(x: torch.Tensor, output_size: Any) -> torch.Tensor:
    """`F.adaptive_avg_pool2d`, a copy where the output size is the input's (each average is of one element)."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if x.ndim == 4 and all(s is None or s == d for s, d in zip(size, x.shape[-2:], strict=True)):
        return x.clone()
    return F.adaptive_avg_pool2d(x, output_size)


def _max_pool2d(x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: bool) -> torch.Tensor:
    """`F.max_pool2d`, through channels-last (and back) for a CPU NCHW tensor that needs no grad."""
    if (x.device.type == "cpu" and x.ndim == 4 and x.is_contiguous() and x.shape[1] > 1
            and not (torch.is_grad_enabled() and x.requires_grad)):
        y = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), kernel_size, stride, padding, dilation,
                         ceil_mode)
        return y.contiguous()
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def _own(module: nn.Module, entries: Weights) -> dict[str, torch.Tensor]:
    """The entries of `entries` that `module` has (functional_call rejects names of modules it lacks)."""
    names = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
    return {k: v for k, v in entries.items() if k in names}


# --------------------------------------------------------------------------------------------------
# fold: one moved Conv2d/Linear run with G x its outputs, the rest of the network on G x B rows


class _Fold:
    """The suffix of a split whose first node is one moved Conv2d/Linear, followed by per-sample ops only.

    Raises `_Unsupported` if the suffix has another shape.
    """

    def __init__(self, split: _Split, moved: Sequence[str], fixed: Weights) -> None:
        if len(split.first) != 1 or split.first[0].op != "call_module":
            raise _Unsupported("the moved entries do not enter at one module")
        layer_node = split.first[0]
        layer = split.modules[str(layer_node.target)]
        if not ((isinstance(layer, nn.Conv2d) and layer.groups == 1 and layer.padding_mode == "zeros")
                or isinstance(layer, nn.Linear)):
            raise _Unsupported(f"the moved module is a {type(layer).__name__}")
        names = {f"{layer_node.target}.weight", f"{layer_node.target}.bias"}
        if not set(moved) <= names or f"{layer_node.target}.weight" not in moved:
            raise _Unsupported("entries other than one layer's weight (and bias) move")
        for node in split.depends:
            if node is layer_node or node.op == "output":
                continue
            if node.op == "call_module":
                mod = split.modules[str(node.target)]
                if not isinstance(mod, _PER_SAMPLE_MODULES) or mod.training or (
                        isinstance(mod, nn.Flatten) and mod.start_dim < 1):
                    raise _Unsupported(f"{type(mod).__name__} at {node.target}")
            elif node.op == "call_function":
                if node.target not in _PER_SAMPLE_FUNCTIONS and not (
                        node.target in _REDUCTION_FUNCTIONS and _past_batch(node)):
                    raise _Unsupported(f"function {node.target}")
            elif node.op == "call_method":
                if node.target not in _PER_SAMPLE_METHODS and not (
                        node.target in _REDUCTION_METHODS and _past_batch(node)):
                    raise _Unsupported(f"method {node.target}")
            else:
                raise _Unsupported(f"{node.op} node {node.target}")
        self.layer, self.layer_name = layer, str(layer_node.target)
        if len(layer_node.all_input_nodes) != 1 or layer_node.kwargs:
            raise _Unsupported("the moved layer takes more than one input")
        self.layer_input = split.frontier.index(layer_node.args[0])  # type: ignore[arg-type]
        # the rest of the suffix: the layer's output and the other frozen values in, the model's output out
        self.rest, self.rest_inputs = split.suffix(start=layer_node)
        _exact_fast_pools(self.rest)
        self.fixed, self.rest_fixed = fixed, _own(self.rest, fixed)

    def __call__(self, weights: Weights, frozen: Frozen) -> torch.Tensor:
        layer, name = self.layer, self.layer_name
        w = weights[f"{name}.weight"]  # (G, out, ...)
        g, out_dim = w.shape[0], w.shape[1]
        b = weights.get(f"{name}.bias")
        if b is None and layer.bias is not None:
            b = self.fixed.get(f"{name}.bias", layer.bias).unsqueeze(0).expand(g, out_dim)
        bias = None if b is None else b.reshape(-1)
        inputs = frozen.values[self.layer_input]
        if isinstance(layer, nn.Conv2d):
            out = F.conv2d(inputs, w.reshape(g * out_dim, *w.shape[2:]), bias, layer.stride, layer.padding,
                           layer.dilation)  # (B, G*out, H', W')
        else:
            out = F.linear(inputs, w.reshape(g * out_dim, -1), bias)  # (B, ..., G*out)
        n = out.shape[0]
        if out.ndim == 4 and out.is_contiguous(memory_format=torch.channels_last) and out_dim > 1:
            # NHWC storage: (B, H, W, G*out) -> (G, B, H, W, out) -> (G*B, out, H, W), kept channels-last
            h, w_ = out.shape[2:]
            out = (out.permute(0, 2, 3, 1).reshape(n, h, w_, g, out_dim).permute(3, 0, 1, 2, 4)
                   .reshape(g * n, h, w_, out_dim).permute(0, 3, 1, 2))
        elif out.ndim == 2 or out.ndim == 4:
            out = out.reshape(n, g, out_dim, *out.shape[2:]).transpose(0, 1).reshape(g * n, out_dim, *out.shape[2:])
        else:
            raise _Unsupported(f"layer output of {out.ndim} dimensions")
        others = [_tile(frozen.values[i], g) if frozen.batched[i] else frozen.values[i] for i in self.rest_inputs]
        args = (out, *others)
        result = functional_call(self.rest, self.rest_fixed, args) if self.rest_fixed else self.rest(*args)
        return result.reshape(g, n, *result.shape[1:])


def _past_batch(node: fx.Node) -> bool:
    """True if a flatten/reduction node acts on dimensions >= 1 only (given as non-negative ints)."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", node.kwargs.get("start_dim"))
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    return all(isinstance(d, int) and d >= 1 for d in dims)


def _tile(t: torch.Tensor, g: int) -> torch.Tensor:
    """(B, ...) -> (G*B, ...): the same rows for each of G copies (copy-major, as the fold lays them out)."""
    return t.repeat(g, *([1] * (t.ndim - 1)))


# --------------------------------------------------------------------------------------------------
# plan: a plain nn.Sequential with every layer stacked


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if type(module) is not nn.Sequential:
        raise _Unsupported(f"{type(module).__name__} is not a plain nn.Sequential")
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            out.extend(_leaves(child, full + "."))
        elif isinstance(child, (nn.Conv2d, nn.Linear, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
                                *_ELEMENTWISE, *_POOLS)):
            if isinstance(child, nn.Conv2d) and child.padding_mode != "zeros":
                raise _Unsupported("only zero-padded convolutions")
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not child.track_running_stats:
                raise _Unsupported("BatchNorm without running statistics")
            if isinstance(child, nn.Flatten) and (child.start_dim != 1 or child.end_dim != -1):
                raise _Unsupported("only Flatten(1, -1)")
            out.append((full, child))
        else:
            raise _Unsupported(f"layer {type(child).__name__} has no stacked form")
    return out


class SequentialPlan:
    """Runs G weight sets of an `nn.Sequential` CNN/MLP at once.

    Feature maps are laid out (N, G*C, H, W) from the first layer whose weights vary to the flatten, so
    every convolution is one grouped convolution (groups = G x the layer's groups), and vectors (G, N, F)
    after it, so every linear layer is one batched matmul. Layers before the first varying one run once
    for all points; a convolution or linear layer of the shared input runs once with G x the filters. A
    ReLU that precedes a max-pooling is applied after it (equal, and 4x less work), an adaptive pooling to
    the size it already has is skipped, and intermediate tensors are updated in place (the input never
    is). Measured in CPU time on one core of this project's CPU (digits CNN): about 3.4 ms per grid point
    for 360 images, 80% of the core's float32 matmul rate; channels-last maps and oneDNN's fused
    convolution + ReLU were tried and gave no gain at this level, so the plan stays NCHW.

    Args:
        model: a plain `nn.Sequential` (nested ones are flattened) of Conv2d, Linear, Flatten, BatchNorm1d/2d
            (eval statistics), pooling and elementwise activation layers; anything else raises `_Unsupported`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = _leaves(model)

    @staticmethod
    def _conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, mod: nn.Conv2d, groups: int,
              relu: bool) -> torch.Tensor:
        out = F.conv2d(h, w, b, mod.stride, mod.padding, mod.dilation, groups)
        return torch.relu_(out) if relu else out

    def __call__(self, varying: Mapping[str, torch.Tensor], fixed: Mapping[str, torch.Tensor],
                 x: torch.Tensor, g: int) -> torch.Tensor:
        h, layout, owned = x, "x", False  # layout "x": unbatched (N, ...); "img": (N, G*C, H, W); "vec": (G, N, F)

        def get(name: str) -> tuple[torch.Tensor | None, bool]:
            if name in varying:
                return varying[name], True
            return fixed.get(name), False

        def stacked(t: torch.Tensor | None, is_var: bool) -> torch.Tensor | None:
            if t is None:
                return None
            return t if is_var else t.unsqueeze(0).expand(g, *t.shape)

        def to_img(h: torch.Tensor) -> torch.Tensor:
            return h.repeat(1, g, *([1] * (h.dim() - 2)))

        layers = self.layers
        i = 0
        while i < len(layers):
            name, mod = layers[i]
            nxt = layers[i + 1][1] if i + 1 < len(layers) else None
            i += 1
            if isinstance(mod, nn.Conv2d):
                after = layers[i + 1][1] if i + 1 < len(layers) else None
                relu = type(nxt) is nn.ReLU and not isinstance(after, nn.MaxPool2d)  # else: pool, then ReLU
                (w, wv), (b, bv) = get(f"{name}.weight"), get(f"{name}.bias")
                if layout == "vec":
                    raise _Unsupported("convolution after a flatten")
                if layout == "x" and not (wv or bv):
                    h = self._conv(h, w, b, mod, mod.groups, relu)
                else:
                    w, b = stacked(w, wv), stacked(b, bv)
                    w2 = w.reshape(g * w.shape[1], *w.shape[2:])
                    b2 = None if b is None else b.reshape(-1)
                    if layout == "x" and mod.groups == 1:  # shared input: one convolution with G x the filters
                        h = self._conv(h, w2, b2, mod, 1, relu)
                    else:
                        h = self._conv(to_img(h) if layout == "x" else h, w2, b2, mod, mod.groups * g, relu)
                    layout = "img"
                owned = True
                i += int(relu)  # the ReLU ran here, in place
            elif isinstance(mod, nn.Linear):
                (w, wv), (b, bv) = get(f"{name}.weight"), get(f"{name}.bias")
                if layout == "img":
                    raise _Unsupported("linear layer on a 4-D feature map")
                if layout == "x":
                    if h.dim() != 2:
                        raise _Unsupported("linear layer on a non-flat input")
                    if not (wv or bv):
                        h = F.linear(h, w, b)
                    else:  # shared input: one matmul with G x the outputs
                        w, b = stacked(w, wv), stacked(b, bv)
                        out = F.linear(h, w.reshape(-1, w.shape[-1]), None if b is None else b.reshape(-1))
                        h, layout = out.reshape(h.shape[0], g, -1).transpose(0, 1), "vec"  # (G, N, O)
                else:
                    w, b = stacked(w, wv), stacked(b, bv)
                    wt = w.transpose(1, 2)
                    h = torch.baddbmm(b.unsqueeze(1), h, wt) if b is not None else torch.bmm(h, wt)
                owned = True
            elif isinstance(mod, nn.Flatten):
                if layout == "img":
                    h, layout = h.reshape(h.shape[0], g, -1).transpose(0, 1), "vec"
                elif layout == "x":
                    h = h.flatten(1)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                entries = [get(f"{name}.{k}") for k in ("running_mean", "running_var", "weight", "bias")]
                if layout == "x" and not any(v for _, v in entries):
                    h = F.batch_norm(h, *(t for t, _ in entries), False, 0.0, mod.eps)
                else:
                    if layout == "x":
                        if isinstance(mod, nn.BatchNorm1d):
                            if h.dim() != 2:
                                raise _Unsupported("BatchNorm1d on a sequence")
                            h, layout = h.unsqueeze(0).expand(g, *h.shape), "vec"
                        else:
                            h, layout = to_img(h), "img"
                    flat = [None if t is None else stacked(t, v).reshape(-1) for t, v in entries]
                    if layout == "img":
                        h = F.batch_norm(h, *flat, False, 0.0, mod.eps)
                    else:  # (G, N, F) -> (N, G*F) and back
                        n = h.shape[1]
                        h = F.batch_norm(h.transpose(0, 1).reshape(n, -1), *flat, False, 0.0, mod.eps)
                        h = h.reshape(n, g, -1).transpose(0, 1)
                owned = True
            elif isinstance(mod, _POOLS):
                if layout == "vec":
                    raise _Unsupported("pooling after a flatten")
                if isinstance(mod, nn.AdaptiveAvgPool2d):
                    size = mod.output_size if isinstance(mod.output_size, tuple) else (mod.output_size,) * 2
                    if tuple(h.shape[-2:]) == tuple(s if s is not None else h.shape[-2 + k]
                                                   for k, s in enumerate(size)):
                        continue  # averaging over one element is the identity
                h, owned = mod(h), True
            elif type(mod) is nn.ReLU:
                if isinstance(nxt, nn.MaxPool2d) and layout != "vec":  # max-pool first: equal, 4x less work
                    h, owned = nxt(h), True
                    i += 1
                h = torch.relu_(h) if owned else torch.relu(h)
                owned = True
            else:  # other elementwise layers (identity in eval mode for dropout)
                h, owned = mod(h), owned or not isinstance(mod, (nn.Identity, nn.Dropout, nn.Dropout2d))
        if layout == "x":
            if h.dim() != 2:
                raise _Unsupported("model output is not (N, classes)")
            return h.unsqueeze(0).expand(g, *h.shape)
        if layout == "img":
            raise _Unsupported("model output is a feature map")
        return h


# --------------------------------------------------------------------------------------------------
# the public forward


class Copies:
    """Outputs (G, B, ...) of G copies of `model` that differ in the entries `moved` (stacked (G, ...)).

    Args:
        model: the network (eval mode expected; never modified). Its own entries are used unless `fixed`
            overrides them.
        moved: names of the parameters/buffers that differ between copies.
        fixed: values of other entries to use instead of the model's (e.g. a surface's centre).
        backend: "auto" (fold, else plan for a plain nn.Sequential, else split + vmap), "vmap" (split + vmap),
            or "loop" (one copy at a time through the whole model: the reference).

    Usage: `frozen = copies.prefix(x)` once per data batch, then `copies(weights, frozen)` for each stack.
    `layout` names the layout in use ("fold", "plan", "vmap" or "loop").
    """

    def __init__(self, model: nn.Module, moved: Sequence[str], *, fixed: Weights | None = None,
                 backend: str = "auto") -> None:
        if backend not in ("auto", "vmap", "loop"):
            raise ValueError(f"backend={backend!r} is not valid; choose 'auto', 'vmap' or 'loop'")
        names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
        unknown = sorted(set(moved) - names)
        if unknown:
            raise ValueError(f"{type(model).__name__} has no entries {unknown}; valid: {sorted(names)}")
        self.model, self.moved, self.fixed = model, list(moved), dict(fixed or {})
        self.split: _Split | None = None
        self.layout = "loop" if backend == "loop" else "vmap"
        self._fold: _Fold | None = None
        self._plan: SequentialPlan | None = None
        traced = None if backend == "loop" else trace(model)
        if traced is not None:
            self.split = _Split(traced, self.moved)
        if backend == "auto" and self.split is not None:
            try:
                self._fold, self.layout = _Fold(self.split, self.moved, self.fixed), "fold"
            except _Unsupported:
                with contextlib.suppress(_Unsupported):
                    self._plan, self.layout = SequentialPlan(model), "plan"
        if self.layout == "plan" or self.split is None:
            self.split = None
            self._suffix, self._own = model, self.fixed
        else:
            if self._fold is None:
                self._suffix = self.split.suffix()[0]
                self._own = _own(self._suffix, self.fixed)
        if self._plan is not None:
            state = {**dict(model.named_parameters()), **dict(model.named_buffers()), **self.fixed}
            self._plan_fixed = {k: v for k, v in state.items() if k not in self.moved}

    def prefix(self, x: torch.Tensor) -> Frozen:
        """What the suffix needs from the frozen part, for the data batch `x` (no grad; reuse it for any stack)."""
        if self.split is None:
            return Frozen((x,), (True,))
        return self.split.prefix(x, self.fixed)

    def __call__(self, weights: Weights, frozen: Frozen) -> torch.Tensor:
        """Outputs (G, B, ...) of the copies `weights` (name -> (G, ...) for every moved entry) on `frozen`."""
        if self._fold is not None:
            return self._fold(weights, frozen)
        if self._plan is not None:
            try:
                return self._plan(weights, self._plan_fixed, frozen.values[0], _copies(weights))
            except _Unsupported:  # a layer order the plan has no stacked form for (e.g. a conv after a flatten)
                self._plan, self.layout = None, "vmap"
        if self.layout == "vmap":
            try:
                return vmap(lambda m, v: functional_call(self._suffix, (m, self._own), v),
                            in_dims=(0, None))(dict(weights), frozen.values)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as why:
                if not str(why).startswith("vmap"):  # only vmap's own refusal of an op; anything else is real
                    raise
                _notice(self.model, f"vmap cannot batch it ({str(why).splitlines()[0]}); one copy at a time")
                self.layout = "loop"
        return torch.stack([functional_call(self._suffix, ({k: v[i] for k, v in weights.items()}, self._own),
                                            frozen.values) for i in range(_copies(weights))])

    def run(self, weights: Weights, x: torch.Tensor) -> torch.Tensor:
        """`self(weights, self.prefix(x))`: one data batch, one stack."""
        return self(weights, self.prefix(x))


_TRACED: weakref.WeakKeyDictionary[nn.Module, dict[bool, fx.GraphModule | None]] = weakref.WeakKeyDictionary()


def trace(model: nn.Module) -> fx.GraphModule | None:
    """`torch.fx.symbolic_trace(model)`, kept per model and train/eval mode; None (with a notice) if untraceable.

    The traced module shares the model's submodules and parameters, so it follows later weight updates; it is
    kept per mode because tracing bakes in Python branches on `self.training`.
    """
    by_mode = _TRACED.setdefault(model, {})
    if model.training not in by_mode:
        try:
            by_mode[model.training] = fx.symbolic_trace(model)
        except fx.proxy.TraceError as why:
            by_mode[model.training] = None
            _notice(model, f"torch.fx cannot trace it ({str(why).splitlines()[0]}); the whole model runs for "
                    "every copy")
    return by_mode[model.training]


def _copies(weights: Weights) -> int:
    return next(iter(weights.values())).shape[0]


def _notice(model: nn.Module, what: str) -> None:
    warnings.warn(f"{type(model).__name__}: {what}", CopiesFallback, stacklevel=3)
