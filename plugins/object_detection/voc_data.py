"""Pascal VOC folders: ``Annotations/*.xml`` (``<object><name>`` and ``<bndbox>`` with 1-based ``xmin ymin
xmax ymax``) and the images in ``JPEGImages/``; the splits of ``ImageSets/Main/{train,val,test}.txt`` when
they exist. Objects marked ``difficult`` are ignored, as the VOC evaluation ignores them.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from dlapps.plugin import DataError
from dlapps_plugins.object_detection.detection_data import IMAGE_SUFFIXES, Annotated, image_size


def read_voc(root: Path):
    """(splits, labels, category ids, kind) of a VOC folder."""
    images_dir = root / "JPEGImages"
    if not images_dir.is_dir():
        raise DataError(f"expected a Pascal VOC folder with Annotations/ and JPEGImages/, received '{root}', which "
                        "has no JPEGImages/ folder")
    files = sorted((root / "Annotations").glob("*.xml"))
    if not files:
        raise DataError(f"expected Pascal VOC annotations (*.xml) in '{root / 'Annotations'}', found none")
    images = {file.stem: _read_xml(file, images_dir) for file in files}
    names = sorted({name for image in images.values() for name in image.classes})
    if not names:
        raise DataError(f"expected objects in the annotations of '{root / 'Annotations'}', found none")
    splits = _image_sets(root, images) or {"all": list(images.values())}
    return splits, names, list(range(1, len(names) + 1)), "Pascal VOC folder"


def _read_xml(file: Path, images_dir: Path) -> Annotated:
    try:
        tree = ElementTree.parse(file).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise DataError(f"expected a Pascal VOC annotation (XML), received '{file}', which cannot be parsed "
                        f"({exc})") from None
    filename = (tree.findtext("filename") or "").strip()
    path = images_dir / filename if filename else None
    if path is None or not path.is_file():  # the file name in the XML is often stale: match by stem
        path = next((images_dir / f"{file.stem}{s}" for s in (".jpg", *IMAGE_SUFFIXES)
                     if (images_dir / f"{file.stem}{s}").is_file()), None)
    if path is None:
        raise DataError(f"expected the image of '{file}' in '{images_dir}' (as '{filename or file.stem + '.jpg'}'), "
                        "found none")
    try:
        width, height = int(tree.findtext("size/width")), int(tree.findtext("size/height"))
        if width <= 0 or height <= 0:
            raise ValueError
    except (TypeError, ValueError):
        width, height = image_size(path)
    image = Annotated(str(path), width, height)
    for obj in tree.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise DataError(f"expected <bndbox> with xmin, ymin, xmax and ymax numbers for each object of '{file}', "
                            f"received an object {name!r} without them") from None
        if not name:
            raise DataError(f"expected a <name> for each object of '{file}', received one without")
        image.boxes.append((xmin - 1, ymin - 1, xmax, ymax))  # VOC pixels are 1-based
        image.classes.append(name)
        image.crowd.append(obj.findtext("difficult", "0").strip() == "1")
    return image


def _image_sets(root: Path, images: dict) -> dict:
    """Splits listed in ImageSets/Main (train, val, test), if any."""
    folder = root / "ImageSets" / "Main"
    splits = {}
    for split, names in (("train", ("train.txt",)), ("validation", ("val.txt",)), ("test", ("test.txt",))):
        file = next((folder / n for n in names if (folder / n).is_file()), None)
        if file is None:
            continue
        stems = [line.split()[0] for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        missing = [s for s in stems if s not in images]
        if missing:
            raise DataError(f"expected an annotation for every image listed in '{file}', found none for "
                            f"{', '.join(missing[:5])}")
        splits[split] = [images[s] for s in stems]
    return splits
