"""Writers of real microscope files for the tests: CZI (pylibCZIrw), OME-TIFF (tifffile), OME-Zarr (zarr).

Each takes planes as (C, Y, X) arrays (or a list of them, one per scene) and writes the pixel size and
channel names into the file's own metadata, as the microscope's software does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _scenes(planes) -> list[np.ndarray]:
    scenes = planes if isinstance(planes, list) else [planes]
    return [s[None] if s.ndim == 2 else s for s in scenes]


def write_czi(path: Path, planes, *, pixel_size_um: float | None, channel_names: list[str] | None = None) -> Path:
    """A Zeiss CZI; several scenes when ``planes`` is a list (laid side by side, as a tiled acquisition)."""
    from pylibCZIrw import czi

    scenes = _scenes(planes)
    with czi.create_czi(str(path), exist_ok=True) as writer:
        left = 0
        for index, stack in enumerate(scenes):
            for c, plane in enumerate(stack):
                writer.write(np.ascontiguousarray(plane), plane={"C": c}, scene=index if len(scenes) > 1 else 0,
                             location=(left, 0))
            left += stack.shape[-1] + 64
        size_m = (pixel_size_um or 0.0) * 1e-6
        writer.write_metadata("test", channel_names=dict(enumerate(channel_names)) if channel_names else None,
                              scale_x=size_m, scale_y=size_m)
    return path


def write_ome_tiff(path: Path, planes, *, pixel_size_um: float | None, channel_names: list[str] | None = None) -> Path:
    """An OME-TIFF; each scene a series."""
    import tifffile

    with tifffile.TiffWriter(path, ome=True) as writer:
        for stack in _scenes(planes):
            metadata = {"axes": "CYX"}
            if pixel_size_um:
                metadata.update(PhysicalSizeX=pixel_size_um, PhysicalSizeY=pixel_size_um)
            if channel_names:
                metadata["Channel"] = {"Name": list(channel_names)}
            writer.write(stack, photometric="minisblack", metadata=metadata)
    return path


def write_ome_zarr(path: Path, planes, *, pixel_size_um: float | None, channel_names: list[str] | None = None,
                   version: str = "0.4") -> Path:
    """An OME-Zarr folder (NGFF 0.4 on zarr v2, or 0.5 on zarr v3); several scenes as bioformats2raw's series."""
    import zarr

    scenes = _scenes(planes)
    fmt = 2 if version == "0.4" else 3
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    groups = [root] if len(scenes) == 1 else [root.create_group(str(i)) for i in range(len(scenes))]
    if len(scenes) > 1:
        root.attrs["bioformats2raw.layout"] = 3
    for group, stack in zip(groups, scenes, strict=True):
        group.create_array("0", data=stack[:, None], chunks=(1, 1, 256, 256))
        axes = [{"name": "c", "type": "channel"}] + [
            {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
        scale = [1.0, 1.0, pixel_size_um or 1.0, pixel_size_um or 1.0]
        multiscales = [{"version": version, "axes": axes,
                        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}]
        omero = {"channels": [{"label": n} for n in channel_names]} if channel_names else None
        if fmt == 2:
            group.attrs["multiscales"] = multiscales
            if omero:
                group.attrs["omero"] = omero
        else:
            group.attrs["ome"] = {"version": version, "multiscales": multiscales, **({"omero": omero} if omero else {})}
    return path
