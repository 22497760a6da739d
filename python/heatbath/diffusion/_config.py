"""diffusers' configuration protocol for heatbath's schedulers.

``Scheduler.from_config(config, **overrides)`` takes the ``config`` of a
diffusers scheduler (or of a heatbath one), ``scheduler.config`` can be given
to diffusers' ``from_config`` in turn, and ``save_pretrained(dir)`` /
``from_pretrained(dir)`` write and read diffusers' ``scheduler_config.json``
layout. A scheduler made from a diffusers scheduler's config stands in for it
in a pipeline: its ``timesteps`` are torch tensors, as diffusers' are.

Keys of a config that a scheduler does not take are ignored: options of
the sibling schedulers (DDPM, DDIM, DPM-Solver) silently, as in diffusers;
others (options of other schedulers, ``_class_name`` of a scheduler heatbath
does not stand in for) with one warning; options of the diffusers namesake that heatbath
implements at one value only are accepted at that value and refused, naming
the key, at any other.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = ["CONFIG_NAME", "FrozenConfig", "ConfigMixin"]

CONFIG_NAME = "scheduler_config.json"
# the schedulers heatbath offers, each a stand-in for its diffusers namesake;
# their configs are interchangeable (the schedule and prediction options are shared)
FAMILY = ("DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler")
# bookkeeping keys of diffusers' configs: read or skipped, never warned about
_METADATA = ("_class_name", "_diffusers_version", "_use_default_values", "_name_or_path")


class FrozenConfig(dict):
    """A scheduler's configuration: a read-only dict whose keys are also
    attributes (as diffusers' ``FrozenDict``)."""

    def __getattr__(self, k: str) -> Any:
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "a scheduler's config is read-only: make a new scheduler with from_config(config, key=value)"
        )

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenConfig, (dict(self),))


def _json_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def _torch_device(device: Any) -> Any:
    """``device`` as a torch.device, or None when it is not a torch device."""
    if type(device).__module__.split(".")[0] == "torch" and type(device).__name__ == "device":
        return device
    return None


_SIBLINGS: Dict[str, type] = {}


def _sibling_keys() -> frozenset:
    """Options of the schedulers of FAMILY (heatbath's, and the diffusers
    options they implement at one value)."""
    keys: set = set()
    for cls in _SIBLINGS.values():
        keys.update(cls._init_keys(), cls._diffusers_fixed)
    return frozenset(keys)


def _from_diffusers(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` is a diffusers scheduler's (its FrozenDict, or a
    file diffusers wrote)."""
    return type(config).__module__.split(".")[0] == "diffusers" or "_diffusers_version" in config


class ConfigMixin:
    """from_config / config / save_pretrained / from_pretrained /
    compatibles, and timesteps in the array type of a diffusers pipeline."""

    config_name = CONFIG_NAME
    #: the heatbath and diffusers schedulers whose configs this one is built from
    compatibles = [f"heatbath.diffusion.{n}" for n in FAMILY] + [f"diffusers.{n}" for n in FAMILY]
    #: options of the diffusers namesake that heatbath implements at one value:
    #: name -> (test of a value, the value(s) implemented, in words)
    _diffusers_fixed: Dict[str, Tuple[Callable[[Any], bool], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in FAMILY:
            _SIBLINGS[cls.__name__] = cls

    # ---- the config ----------------------------------------------------------

    @classmethod
    def _init_keys(cls) -> Tuple[str, ...]:
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(
            p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def _register_config(self, values: Mapping[str, Any]) -> None:
        """Set ``self.config`` to the constructor's options (those of this
        class's ``__init__``), read-only."""
        keys = self._init_keys()
        self.config = FrozenConfig({k: values[k] for k in keys if k in values})

    @classmethod
    def from_config(
        cls, config: Optional[Mapping[str, Any]] = None, return_unused_kwargs: bool = False, **overrides: Any
    ) -> Any:
        """A scheduler built from a configuration mapping (diffusers' call).

        Parameters
        ----------
        config : mapping
            ``scheduler.config`` of a diffusers or heatbath scheduler, or the
            contents of a ``scheduler_config.json``.
        return_unused_kwargs : bool
            Also return a dict of the keys that were ignored.
        **overrides
            Options that replace the config's (each must be an option of this
            scheduler).

        Returns
        -------
        scheduler, or (scheduler, ignored) when ``return_unused_kwargs``.

        Raises
        ------
        TypeError
            When ``config`` is not a mapping or an override is not an option.
        ValueError
            When the config asks for a diffusers option heatbath does not
            implement (e.g. ``use_karras_sigmas=True``), naming it.
        """
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise TypeError(
                f"'config': expected a mapping (a scheduler's config), got {type(config).__name__}; "
                "use from_pretrained(path) for a folder"
            )
        keys = set(cls._init_keys())
        for k in overrides:
            if k not in keys and k not in cls._diffusers_fixed:
                raise TypeError(f"'{k}': not an option of heatbath's {cls.__name__}")
        merged = dict(config)
        merged.update(overrides)
        init: Dict[str, Any] = {}
        ignored: Dict[str, Any] = {}
        for k, v in merged.items():
            if k in keys:
                init[k] = v
            elif k in cls._diffusers_fixed:
                ok, implemented = cls._diffusers_fixed[k]
                if not ok(v):
                    raise ValueError(
                        f"'{k}': heatbath's {cls.__name__} implements {implemented} only, got {v!r}"
                    )
            elif k == "_class_name":
                if v not in FAMILY and v != cls.__name__:
                    ignored[k] = v
            elif k not in _METADATA:
                ignored[k] = v
        # options of the sibling schedulers go unused without a word, as in diffusers
        loud = {k: v for k, v in ignored.items() if k not in _sibling_keys()}
        if loud:
            names = ", ".join(f"{k}={loud[k]!r}" if k == "_class_name" else k for k in sorted(loud))
            warnings.warn(
                f"{cls.__name__}.from_config: ignoring {names} (not options of heatbath's {cls.__name__})",
                UserWarning,
                stacklevel=2,
            )
        obj = cls(**init)
        if _from_diffusers(config):
            obj._torch_timesteps = True
        return (obj, ignored) if return_unused_kwargs else obj

    def save_pretrained(self, save_directory: Any, push_to_hub: bool = False, **kwargs: Any) -> str:
        """Write ``save_directory/scheduler_config.json`` (diffusers' layout:
        the options and ``_class_name``, sorted, indented by 2).

        Returns
        -------
        str, the path of the file written.
        """
        if push_to_hub:
            raise ValueError("'push_to_hub': heatbath writes local folders only")
        if kwargs:
            raise TypeError(f"'{next(iter(kwargs))}': not an argument of save_pretrained")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"'save_directory': {save_directory!r} is a file, expected a folder")
        os.makedirs(save_directory, exist_ok=True)
        data = {k: _json_value(v) for k, v in self.config.items()}
        data["_class_name"] = type(self).__name__
        path = os.path.join(save_directory, self.config_name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Any,
        subfolder: Optional[str] = None,
        return_unused_kwargs: bool = False,
        **overrides: Any,
    ) -> Any:
        """A scheduler from a local folder holding ``scheduler_config.json``
        (or from that file itself): a folder written by ``save_pretrained``
        of heatbath or diffusers, or a pipeline folder with
        ``subfolder="scheduler"``. Nothing is downloaded.

        Parameters as :meth:`from_config`, plus ``subfolder``.

        Raises
        ------
        OSError
            When there is no such file (a hub name is not looked up).
        ValueError
            When the file is not a JSON object.
        """
        path = os.fspath(pretrained_model_name_or_path)
        if subfolder:
            path = os.path.join(path, subfolder)
        if os.path.isdir(path):
            path = os.path.join(path, cls.config_name)
        if not os.path.isfile(path):
            raise OSError(
                f"'pretrained_model_name_or_path': no {cls.config_name} at {path!r} (heatbath reads "
                "local folders only; nothing is downloaded)"
            )
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"'pretrained_model_name_or_path': {path!r} is not valid JSON ({exc})"
                ) from None
        if not isinstance(data, dict):
            raise ValueError(f"'pretrained_model_name_or_path': {path!r} does not hold a JSON object")
        return cls.from_config(data, return_unused_kwargs=return_unused_kwargs, **overrides)

    # ---- timesteps in the pipeline's array type -----------------------------

    _torch_timesteps = False
    _timesteps: np.ndarray
    _timesteps_out: Any = None

    @property
    def timesteps(self) -> Any:
        """The sampling timesteps, decreasing (int64): a numpy array, or a
        torch tensor (on the device given to ``set_timesteps``) for a
        scheduler that stands in for a diffusers one (made from a diffusers
        config, or given a torch device)."""
        if not self._torch_timesteps:
            return self._timesteps
        out = self._timesteps_out
        if out is None or out[0] is not self._timesteps:
            import torch

            t = torch.from_numpy(self._timesteps)
            dev = getattr(self, "_timesteps_device", None)
            out = (self._timesteps, t if dev is None else t.to(dev))
            self._timesteps_out = out
        return out[1]

    @timesteps.setter
    def timesteps(self, value: Any) -> None:
        self._timesteps = value

    def _timesteps_on(self, device: Any) -> None:
        """Note the ``device`` of ``set_timesteps``: a torch device (or, for a
        stand-in of a diffusers scheduler, a device string) puts the
        timesteps there as a torch tensor; None keeps the current choice."""
        if device is None:
            return
        tdev = _torch_device(device)
        if tdev is None and isinstance(device, str) and self._torch_timesteps:
            import torch

            try:
                tdev = torch.device(device)
            except RuntimeError:
                raise ValueError(f"'device': {device!r} is not a torch device") from None
        if tdev is not None:
            self._torch_timesteps = True
            self._timesteps_device = None if tdev.type == "cpu" else tdev
            self._timesteps_out = None
