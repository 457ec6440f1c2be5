"""What ``kubectl kustomize`` makes of deploy/kubernetes, for machines without kubectl.

Only the parts of kustomize those files use: ``resources`` (files and directories),
``configMapGenerator`` (files; create, replace; the content hash kustomize appends to the
name, and the references to it), ``labels`` (with ``includeSelectors``), ``images``
(``newTag``, ``newName``) and ``patches`` that are strategic merge patches, ``$patch: delete``
included. Anything else in a kustomization is refused, so a file that needs more fails here
instead of being rendered wrong. Where kubectl is installed, the tests check that both give the
same objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
KNOWN = {"apiVersion", "kind", "resources", "configMapGenerator", "labels", "images", "patches"}
# Strategic merge: the keys that identify an item of each list (Kubernetes' patchMergeKey,
# with the protocol where listMapKeys has it).
MERGE_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
}
PORT_KEYS = {"containerPort": ("containerPort", "protocol"), "port": ("port", "protocol")}


class Rendered:
    def __init__(self) -> None:
        self.objects: list[Object] = []
        self.generated: set[str] = set()  # ConfigMaps whose names get a hash


def render(directory: Path) -> list[Object]:
    """The objects of the kustomization in ``directory``, with generated names hashed."""
    result = _build(directory)
    renames = {}
    for item in result.objects:
        name = item["metadata"]["name"]
        if item["kind"] == "ConfigMap" and name in result.generated:
            item["metadata"]["name"] = renames[name] = f"{name}-{config_map_hash(item)}"
    for item in result.objects:
        _rename_references(item, renames)
    return result.objects


def config_map_hash(item: Object) -> str:
    """kustomize's name suffix: sha256 of Go's JSON of kind, data and a name, 10 characters.
    The name it hashes is empty (found by comparing with kubectl kustomize's output)."""
    encoded = {"data": item.get("data", {}), "kind": "ConfigMap", "name": ""}
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for character, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(character, escape)  # as Go's encoding/json writes them
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _build(directory: Path) -> Rendered:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise ValueError(f"{directory}: kustomization fields not rendered here: {sorted(unknown)}")
    result = Rendered()
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            below = _build(path)
            result.objects += below.objects
            result.generated |= below.generated
        else:
            result.objects += [item for item in yaml.safe_load_all(path.read_text()) if item]
    for generator in kustomization.get("configMapGenerator", []):
        _generate(directory, generator, result)
    for labels in kustomization.get("labels", []):
        for item in result.objects:
            _label(item, labels["pairs"], labels.get("includeSelectors", False))
    for image in kustomization.get("images", []):
        for item in result.objects:
            _set_image(item, image)
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{directory}: only patches with a path are rendered here: {patch}")
        for change in yaml.safe_load_all((directory / patch["path"]).read_text()):
            result.objects = _patch(result.objects, change)
    return result


def _generate(directory: Path, generator: Object, result: Rendered) -> None:
    data = {Path(name).name: (directory / name).read_text() for name in generator["files"]}
    name = generator["name"]
    behavior = generator.get("behavior", "create")
    existing = [o for o in result.objects if o["kind"] == "ConfigMap" and _name(o) == name]
    if behavior == "replace":
        (target,) = existing
        target["data"] = data
    elif behavior == "create" and not existing:
        item = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        result.objects.append(item)
    else:
        raise ValueError(f"{directory}: configMapGenerator {name}: {behavior} is not rendered")
    result.generated.add(name)


def _label(item: Object, pairs: dict[str, str], selectors: bool) -> None:
    item.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if not selectors:
        return
    spec = item.get("spec", {})
    if item["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    elif item["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "PodDisruptionBudget"}:
        selector = spec.setdefault("selector", {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **pairs}
        if "template" in spec:
            spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_image(item: Object, image: Object) -> None:
    template = item.get("spec", {}).get("template", {}).get("spec", {})
    for container in template.get("containers", []) + template.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def _patch(objects: list[Object], change: Object) -> list[Object]:
    def matches(item: Object) -> bool:
        return item["kind"] == change["kind"] and _name(item) == _name(change)

    if not any(matches(item) for item in objects):
        raise ValueError(f"no {change['kind']} {_name(change)} to patch")
    if change.get("$patch") == "delete":
        return [item for item in objects if not matches(item)]
    return [_merge(item, change) if matches(item) else item for item in objects]


def _merge(original: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes' strategic merge of ``patch`` into ``original``: maps merge key by key (a
    null deletes), lists of objects merge item by item on their merge keys, the patch's
    items first, and ``$patch: delete`` removes an item; any other value is replaced."""
    if isinstance(original, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value, key)
            else:
                merged[key] = _without_directives(value)
        return merged
    keys = _list_keys(field, patch)
    if isinstance(original, list) and isinstance(patch, list) and keys:

        def identity(item: Object) -> tuple[Any, ...]:
            return tuple(item.get(key, "TCP" if key == "protocol" else None) for key in keys)

        by_identity = {identity(item): item for item in original}
        merged_list = []
        for item in patch:
            base = by_identity.pop(identity(item), None)
            if item.get("$patch") == "delete":
                continue
            merged_list.append(_merge(base, item) if base is not None else item)
        return merged_list + list(by_identity.values())
    return copy.deepcopy(patch)


def _list_keys(field: str, patch: Any) -> tuple[str, ...]:
    if not isinstance(patch, list) or not patch or not isinstance(patch[0], dict):
        return ()
    if field == "ports":
        return next((keys for key, keys in PORT_KEYS.items() if key in patch[0]), ())
    return MERGE_KEYS.get(field, ())


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value if not _is_delete(v)]
    return value


def _is_delete(value: Any) -> bool:
    return isinstance(value, dict) and value.get("$patch") == "delete"


def _rename_references(item: Object, renames: dict[str, str]) -> None:
    pod = item.get("spec", {}).get("template", {}).get("spec", {})
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            volume["configMap"]["name"] = renames.get(name, name)
    for container in pod.get("containers", []):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                name = source["configMapRef"]["name"]
                source["configMapRef"]["name"] = renames.get(name, name)


def _name(item: Object) -> str:
    name: str = item["metadata"]["name"]
    return name
