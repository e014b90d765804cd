"""What each dataset loader expects: the annotation file, the frame layout, the label schemes.

One record per name of :data:`~mer_cache.catalogue.registry.DATASETS`, shown by
``mer-cache datasets list`` so a user can lay out a copy before the loader complains. The
label schemes named here are those that map the dataset's own labels to their classes
(``emotion``, the raw labels, applies to every dataset); ``aus`` marks datasets whose
annotation codes action units (see :mod:`mer_cache.catalogue.aus`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    annotation: str
    frames: str
    schemes: tuple[str, ...]
    labels: tuple[str, ...]  # the raw labels the loader accepts (empty: any)
    aus: bool = False


SUPPORTED: dict[str, DatasetInfo] = {i.name: i for i in (
    DatasetInfo("smic", "SMIC (HS 100 fps, VIS/NIR 25 fps)", "none: labels are folder names",
                "HS/s1/micro/negative/s1_ne_01/*.bmp, HS/s1/non_micro/<clip>/ (or SMIC_all_cropped/HS/...)",
                ("smic4", "megc3"), ("negative", "positive", "surprise", "non_micro")),
    DatasetInfo("casme2", "CASME II (200 fps)", "CASME2-coding-20190701.xlsx",
                "CASME2_RAW_selected/sub01/EP02_01f/img46.jpg (or Cropped/sub01/EP02_01f/reg_img46.jpg)",
                ("casme2-5", "megc3"),
                ("happiness", "surprise", "disgust", "repression", "others", "sadness", "fear"), True),
    DatasetInfo("samm", "SAMM (200 fps)", "SAMM_Micro_FACS_Codes_v2.xlsx (12 preamble rows)",
                "SAMM/006/006_1_2/006_05562.jpg", ("megc3",),
                ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise"), True),
    DatasetInfo("casme3", "CAS(ME)^3 part A (30 fps)", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx",
                "part_A/data/part_A/spNO.1/a/color/1.jpg (one clip per xlsx row)", ("megc3",),
                ("anger", "disgust", "fear", "happy", "sad", "surprise", "others"), True),
    DatasetInfo("megc2019", "MEGC2019 composite: SMIC HS + CASME II + SAMM, 442 clips",
                "the published 442-clip list (shipped) + each part's own file",
                "the three datasets' own layouts (-o smic_root/casme2_root/samm_root)",
                ("megc3",), ("negative", "positive", "surprise")),
    DatasetInfo("casme", "CASME (I), sections A and B (60 fps)", "CASME-coding-*.xlsx (OnsetF, ApexF1, ApexF2, OffsetF, AU, Emotion)",
                "CASME_raw_selected/sub01/EP01_5/*.jpg, or Section A/sub01/..., Section B/sub08/...",
                ("casme2-5", "megc3"),
                ("happiness", "surprise", "disgust", "repression", "tense", "fear", "sadness", "contempt"), True),
    DatasetInfo("4dme", "4DME, 2D gray frames (60 fps)", "4DME_Labelling_Micro_release v1.xlsx",
                "gray_micro/<sub_ID>/<fold_name>/*.jpg (or gray_micro_crop/)", ("megc3",),
                ("positive", "negative", "surprise", "repression", "others"), True),
    DatasetInfo("mmew", "MMEW micro-expressions (90 fps)", "MMEW_Micro_Exp.xlsx",
                "Micro_Expression/<emotion>/<Filename>/*.jpg", ("megc3", "casme2-5"),
                ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others"), True),
    DatasetInfo("casme3c", "CAS(ME)^3 part C (30 fps; AUs only)", "CAS(ME)3_part_C_ME.xlsx (sub, count, au, onset, offset)",
                "ME_C/01/1/color/1.jpg", (), ("unlabelled",), True),
    DatasetInfo("casme3-ac", "CAS(ME)^3 parts A + C", "both parts' xlsx",
                "both parts' layouts (-o part_a_root / part_c_root)", ("megc3",),
                ("anger", "disgust", "fear", "happy", "sad", "surprise", "others", "unlabelled"), True),
    DatasetInfo("smic-e", "SMIC-E long videos (HS 100 fps, VIS/NIR 25 fps)",
                "SMIC-HS-E_annotation.xlsx (Subject, Filename, OnsetF, OffsetF, Emotion, FirstF)",
                "SMIC-HS-E/s01/<Filename>/image000101.jpg", ("smic4", "megc3"),
                ("negative", "positive", "surprise")),
    DatasetInfo("folder", "any frame folders", "none: labels are folder names",
                "<root>/<subject>/<label>/<clip>/*.jpg", (), ()),
    DatasetInfo("video", "any video files (PyAV)", "none: labels are folder names",
                "<root>/<subject>/<label>/<clip>.mp4", (), ()),
    DatasetInfo("manifest", "a CSV you write", "the CSV itself: subject, clip, label, frames_dir[, onset, apex, offset]",
                "any (frames_dir per row)", (), ()),
)}
