"""Generic loaders: folder tree, CSV manifest, and video files via PyAV."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from catalogue_trees import write_frames
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.errors import DatasetError, LabelError


def test_folder_tree(tmp_path):
    write_frames(tmp_path / "p1/happy/c1", ["f10.png", "f9.png"])
    write_frames(tmp_path / "p1/sad/c2", ["f1.png"])
    write_frames(tmp_path / "p2/happy/c3", ["f1.png", "f2.png"])
    clips = load_catalogue("folder", tmp_path, fps="50", name="mine")
    assert [(c.clip_id, c.label, c.n_frames) for c in clips] == [
        ("mine/p1/c1", "happy", 2), ("mine/p1/c2", "sad", 1), ("mine/p2/c3", "happy", 2)]
    assert clips[0].frames[0].name == "f9.png" and clips[0].fps == 50.0


def test_folder_duplicates_and_loose_images(tmp_path):
    write_frames(tmp_path / "p1/happy/c1", ["1.png"])
    write_frames(tmp_path / "p1/sad/c1", ["1.png"])
    with pytest.raises(DatasetError, match="folder/p1/c1 is used by 2 clips"):
        load_catalogue("folder", tmp_path)
    write_frames(tmp_path / "p2/happy", ["1.png"])
    with pytest.raises(DatasetError, match="images sit directly in a label folder"):
        load_catalogue("folder", tmp_path)


def test_manifest(tmp_path):
    write_frames(tmp_path / "frames/a", [f"x{n}.jpg" for n in range(1, 11)])
    write_frames(tmp_path / "frames/b", ["y1.jpg"])
    csv = tmp_path / "list.csv"
    csv.write_text("subject,clip,label,frames_dir,onset,apex,offset,fps\n"
                   "s1,a,pos,frames/a,1,4,8,100\n"
                   "s2,b,neg,frames/b,,,,\n")
    clips = load_catalogue("manifest", csv)
    assert [c.clip_id for c in clips] == ["manifest/s1/a", "manifest/s2/b"]
    assert (clips[0].onset, clips[0].apex, clips[0].offset, clips[0].fps) == (1, 4, 8, 100.0)
    assert [p.name for p in clips[0].frames][:3] == ["x1.jpg", "x2.jpg", "x3.jpg"]
    assert clips[1].onset is None and clips[1].fps == 30.0
    with pytest.raises(LabelError, match="'neg' is not allowed"):
        load_catalogue("manifest", csv, labels="pos,surprise")


def test_manifest_bad_input(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("subject,clip,frames_dir\ns1,a,frames/a\n")
    with pytest.raises(DatasetError) as err:
        load_catalogue("manifest", csv)
    assert "no column 'label'" in str(err.value) and "list.csv" in str(err.value)
    csv.write_text("subject,clip,label,frames_dir,apex\ns1,a,pos,frames/a,3\n")
    with pytest.raises(DatasetError, match="frames_dir does not exist"):
        load_catalogue("manifest", csv)
    (tmp_path / "frames/a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="frames_dir holds no image"):
        load_catalogue("manifest", csv)
    write_frames(tmp_path / "frames/a", ["1.png", "2.png"])
    with pytest.warns(DatasetWarning, match="apex '3' is not a frame index 0..1"):
        load_catalogue("manifest", csv)


def _write_video(path, n_frames):
    av = pytest.importorskip("av", reason="the video loader needs the optional `video` extra (PyAV)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), i * 20, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_video_clips(tmp_path):
    _write_video(tmp_path / "s1/happy/v1.mp4", 6)
    _write_video(tmp_path / "s1/sad/v2.avi", 4)
    clips = load_catalogue("video", tmp_path)
    assert [(c.clip_id, c.label, c.n_frames, c.frames) for c in clips] == [
        ("video/s1/v1", "happy", 6, ()), ("video/s1/v2", "sad", 4, ())]
    assert clips[0].video.name == "v1.mp4" and clips[0].fps == 25.0
    (tmp_path / "s1/sad/v3.mp4").write_bytes(b"not a video")
    with pytest.raises(DatasetError, match="v3.mp4"):
        load_catalogue("video", tmp_path)


def test_video_without_pyav_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "s1/happy").mkdir(parents=True)
    (tmp_path / "s1/happy/v1.mp4").write_bytes(b"\0")
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(DatasetError, match=r"pip install 'mer-cache\[video\]'"):
        load_catalogue("video", tmp_path)
