"""Opening the personal values a station sealed to the hub (issue 16, ``protocol/hub_seal.py``).

A station that seals its citizens' data at rest sends each change that writes a personal value with
a tenth wire element, the ``hub_seal``: the plaintext values sealed to this hub's X25519 key. Here,
after the batch's signature is verified and before anything is judged or kept, each is opened and
checked against the fields: every sealed value (``sync/sealed_value.py``) must have a plaintext in it
whose mask is the mask it carries, and each plaintext is substituted. The change the hub then admits,
folds, digests and stores is the plaintext one, byte for byte what a station without sealing sends,
so anti-entropy agrees; the hub never keeps a sealed value or a seal.

A seal opens with the key it was sealed to: the current sealing key, or one a rotation retired
(``hub/seal_keys.py``), so a change sealed before ``rotate-key --seal`` and sent after it is applied.
A seal that does not open, a mask that does not match, or a sealed value without a seal is an
authentic change that cannot be applied: it is quarantined with its reason (never dropped).
"""

from __future__ import annotations

from hub.seal_keys import Keys
from protocol.errors import DecryptError, RemoteProtocolError
from protocol.hub_seal import open_values
from sync import sealed_value

NOT_OPENED = "本站加密给区局的个人信息无法解开，变更暂存待核对 (the change's hub seal does not open: {why})"
MISMATCH = "本站加密给区局的个人信息与变更中的字段不符，变更暂存待核对 (sealed field {field!r} does not match its seal)"
NO_SEAL = "变更中有加密的个人信息但没有给区局的密封件，变更暂存待核对 (sealed values without a hub seal)"
# A station minimises a delivered application 30 days after our receipt (node/at_rest_minimise.py); if
# this hub was since restored from an older backup and the change came back without its hub seal, its
# personal values are nowhere but in our later backups and the paper file. Never applied with masks.
MINIMISED = (
    "站点已按规定只保留该办件个人信息的遮蔽形式，且没有给区局的密封件，个人信息无法从站点补回："
    "请从比这次恢复所用的更新的区局备份（如夜间轮转备份）或纸质档案核对该办件的申请人信息，补录后驳回本条"
    " (minimised at the station with no hub seal: restore the values from a newer hub backup or the paper file)"
)


def code_for(reason: str) -> str:
    """The stable code a held change's reason from :func:`open_change` is quarantined with."""
    return "minimised" if reason == MINIMISED else "hub_seal"


def _has_sealed(fields: object) -> bool:
    return isinstance(fields, dict) and any(sealed_value.is_sealed(v) for v in fields.values())


def _minimised(fields: dict[object, object]) -> bool:
    """Every sealed value is a mask alone (no station ciphertext, nothing pending): minimised."""
    decoded = [sealed_value.decode(v) for v in fields.values() if sealed_value.is_sealed(v)]  # type: ignore[arg-type]
    return bool(decoded) and all(siv is None and pending is None for _mask, siv, pending in decoded)


def _opened(seal: object, keys: Keys, *, origin: str, entity: str, rec_id: str) -> dict[str, str]:
    """The seal's values, opened with the first of ``keys`` (current, then retired: ``hub/seal_keys.py``)
    that it was sealed to."""
    for kid, private in keys:
        try:
            return open_values(seal, private, kid, origin=origin, entity=entity, rec_id=rec_id)
        except DecryptError:
            if isinstance(seal, list) and seal and seal[0] == kid:
                raise  # the key it names, and it does not open: no other key will
    named = seal[0] if isinstance(seal, list) and seal else None
    raise DecryptError(f"sealed to key {named!r}, neither the hub's current sealing key nor one it retired")


def open_change(raw: object, keys: Keys) -> tuple[object, str]:
    """``(the plaintext wire change, "")``, or ``(raw, reason)`` when it must be quarantined. A wire
    change that is not an array is left to the model's checks. ``keys``: ``seal_keys.sealing_keys``."""
    if not isinstance(raw, list) or len(raw) < 8:
        return raw, ""
    if len(raw) != 10:
        if not _has_sealed(raw[6]):
            return raw, ""
        return raw, (MINIMISED if _minimised(raw[6]) else NO_SEAL)  # type: ignore[arg-type]
    origin, entity, rec_id, fields, author = raw[0], raw[4], raw[5], raw[6], raw[8]
    if not (isinstance(origin, str) and isinstance(entity, str) and isinstance(rec_id, str)):
        return raw, NOT_OPENED.format(why="malformed change")
    if not isinstance(fields, dict):
        return raw, NOT_OPENED.format(why="malformed fields")
    try:
        plain = _opened(raw[9], keys, origin=origin, entity=entity, rec_id=rec_id)
    except RemoteProtocolError as exc:
        return raw, NOT_OPENED.format(why=str(exc))
    out = dict(fields)
    for name, value in fields.items():
        if not sealed_value.is_sealed(value):
            continue
        text = plain.get(name)
        if text is None or sealed_value.decode(value)[0] != sealed_value.mask_for(name, text):
            return raw, MISMATCH.format(field=name)
        out[name] = text
    if set(plain) - {n for n, v in fields.items() if sealed_value.is_sealed(v)}:
        return raw, MISMATCH.format(field=sorted(set(plain) - set(out))[0] if set(plain) - set(out) else "?")
    wire = [*raw[:6], out, raw[7]]
    return ([*wire, author] if author != "" else wire), ""
