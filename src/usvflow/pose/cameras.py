"""Pinhole cameras of an aniposelib calibration, without aniposelib: projection and DLT triangulation.

aniposelib (0.8) triangulates with jax and computes its residuals with numba; importing and compiling
them costs each triangulation worker about 600 MB before it has read a frame. The triangulation here
needs only what these functions compute, so they are done with OpenCV and numpy:

* :meth:`Camera.project` is aniposelib's ``Camera.project`` (``cv2.projectPoints`` with the camera's
  matrix, distortion, rotation and translation);
* :meth:`Cameras.triangulate` is aniposelib's ``CameraGroup.triangulate``: points undistorted to
  normalised coordinates, for each point the linear system ``u · M[2] − M[0], v · M[2] − M[1]`` of the
  cameras that see it (``M``: the 4×4 extrinsics), solved by SVD (last right singular vector,
  dehomogenised); NaN where fewer than two cameras see the point.

:meth:`Cameras.load` reads the calibration TOML (``[cam_N]`` tables: ``name``, ``size``, ``matrix``,
``distortions``, ``rotation``, ``translation``); fisheye cameras are not covered
(:class:`NotImplementedError`: the caller uses aniposelib then).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

import numpy as np

from ..io.atomic import InputError


@dataclass
class Camera:
    name: str
    size: tuple[int, int]
    matrix: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,)
    rvec: np.ndarray  # (3,)
    tvec: np.ndarray  # (3,)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel positions (N, 2) of points (N, 3) in the calibration's frame."""
        import cv2

        pts = np.ascontiguousarray(np.asarray(points, np.float64).reshape(-1, 1, 3))
        out, _ = cv2.projectPoints(pts, self.rvec, self.tvec, self.matrix, self.dist)
        return out.reshape(-1, 2)

    def undistort(self, points: np.ndarray) -> np.ndarray:
        """Normalised image coordinates (N, 2) of pixel positions (N, 2)."""
        import cv2

        pts = np.ascontiguousarray(np.asarray(points, np.float64).reshape(-1, 1, 2))
        return cv2.undistortPoints(pts, self.matrix, self.dist).reshape(-1, 2)

    def extrinsics(self) -> np.ndarray:
        """4×4 ``[R t; 0 1]``."""
        import cv2

        m = np.eye(4)
        m[:3, :3] = cv2.Rodrigues(self.rvec)[0]
        m[:3, 3] = self.tvec
        return m


class Cameras:
    """An ordered group of :class:`Camera` (the subset of a calibration that a triangulation uses)."""

    def __init__(self, cameras: list[Camera]):
        self.cameras = list(cameras)

    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @classmethod
    def load(cls, path: str | os.PathLike) -> Cameras:
        """The cameras of an aniposelib calibration TOML, in the file's (sorted table) order."""
        try:
            with open(path, "rb") as fh:
                d = tomllib.load(fh)
        except FileNotFoundError:
            raise InputError(path, "file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not an aniposelib calibration TOML ({exc})") from None
        cams = []
        for key in sorted(k for k in d if k != "metadata"):
            c = d[key]
            if c.get("fisheye"):
                raise NotImplementedError("fisheye cameras")
            try:
                cams.append(
                    Camera(
                        name=str(c["name"]),
                        size=tuple(int(v) for v in c["size"]),
                        matrix=np.asarray(c["matrix"], np.float64).reshape(3, 3),
                        dist=np.asarray(c["distortions"], np.float64).ravel(),
                        rvec=np.asarray(c["rotation"], np.float64).ravel(),
                        tvec=np.asarray(c["translation"], np.float64).ravel(),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(path, f"camera table [{key}] is incomplete ({exc})") from None
        if not cams:
            raise InputError(path, "no cameras in the calibration")
        return cls(cams)

    @classmethod
    def from_group(cls, cgroup) -> Cameras:
        """The same cameras as an aniposelib ``CameraGroup`` (pinhole)."""
        if isinstance(cgroup, Cameras):
            return cgroup
        cams = []
        for cam in cgroup.cameras:
            if type(cam).__name__ == "FisheyeCamera":
                raise NotImplementedError("fisheye cameras")
            cams.append(
                Camera(
                    name=str(cam.get_name()),
                    size=tuple(cam.get_size()),
                    matrix=np.asarray(cam.get_camera_matrix(), np.float64),
                    dist=np.asarray(cam.get_distortions(), np.float64).ravel(),
                    rvec=np.asarray(cam.get_rotation(), np.float64).ravel(),
                    tvec=np.asarray(cam.get_translation(), np.float64).ravel(),
                )
            )
        return cls(cams)

    def subset(self, names: list[str]) -> Cameras:
        by = {c.name: c for c in self.cameras}
        return Cameras([by[n] for n in names])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(C, N, 2) pixel positions of points (N, 3)."""
        return np.stack([c.project(points) for c in self.cameras])

    def triangulate(self, points: np.ndarray, undistort: bool = True) -> np.ndarray:
        """(N, 3) points from (C, N, 2) pixel positions (NaN = unseen), by DLT (module docstring)."""
        points = np.asarray(points, np.float64)
        n_cams, n = points.shape[:2]
        if n_cams != len(self.cameras):
            raise ValueError(f"points of {n_cams} cameras for a group of {len(self.cameras)}")
        if undistort:
            points = np.stack([c.undistort(p) for c, p in zip(self.cameras, points)])
        mats = np.stack([c.extrinsics() for c in self.cameras])  # (C, 4, 4)
        valid = ~np.isnan(points[..., 0])  # (C, N)
        # rows u·M[2] − M[0], v·M[2] − M[1] of every camera: (N, C, 2, 4)
        a = points.transpose(1, 0, 2)[..., None] * mats[None, :, 2, None, :] - mats[None, :, :2, :]
        a = np.where(valid.T[:, :, None, None], a, 0.0).reshape(n, 2 * n_cams, 4)
        _, _, vh = np.linalg.svd(a, full_matrices=True)
        h = vh[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = h[:, :3] / h[:, 3:4]
        out[valid.sum(axis=0) < 2] = np.nan
        return out
