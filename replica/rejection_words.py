"""The protocol's refusals (protocol/errors.py and the hub's own codes) as staff read them.

The protocol layer words its errors in English for developers ("not a Sanji frame: it does not start
with the SJF1 magic"); staff meet them when a carried file is refused on import or a batch is refused
on sync. Each stable code gets a Chinese sentence saying what happened and what to do next, and the
developer's detail follows in brackets. The codes themselves stay as they are: scripts and the hub's
refusal log read them.
"""

from __future__ import annotations

# code: (what happened, what to do next)
_RESEND = "请在发出方重新导出（或重新同步）后再试；仍不行请联系区局"
WORDS: dict[str, tuple[str, str]] = {
    "malformed": ("文件或应答的内容无法解读（不是 Sanji 的文件，或已损坏）", _RESEND),
    "too_large": ("文件或请求超过允许的大小", _RESEND),
    "unsupported_version": ("文件的格式版本本机不支持", "请把本机的 Sanji 升级到与区局相同的版本"),
    "unknown_key": ("签名的密钥不认识（不是本区登记的站点或区局所签）", "请确认文件来自本区；站点须先由区局登记并接入"),
    "bad_signature": ("签名核验未通过（文件可能被改动过）", _RESEND),
    "body_digest_mismatch": ("内容与签名不符（文件可能被改动或损坏）", _RESEND),
    "wrong_recipient": ("文件不是发给这里的", "请只导入发给本机的文件"),
    "decrypt_failed": ("无法解密（不是加密给这里的，或已损坏）", _RESEND),
    "invalid": ("内容不符合规则", "请联系区局核查"),
    "revoked": ("发送站点的密钥已被区局吊销", "请联系区局重新登记该站点"),
    "stale": ("请求的时间与区局相差太多", "请校准本机的日期和时间后重试"),
    "unsealed": ("批次没有加密给区局", "请用 sanji 站点程序重新导出或同步"),
    "unauthenticated": ("请求没有签名", "请用 sanji 站点程序同步"),
    "fork": ("同一序号出现了不同内容（站点可能从备份恢复或被复制过）", "已暂存待区局核对；请联系区局"),
    "tampered": ("照片数据与签名的摘要不符", "下次同步时会重传；仍不行请联系区局"),
    "unreferenced": ("区局还没有提到这张照片的踏勘报告", "请先同步踏勘报告，照片随后上传"),
    "bad_key_chain": ("区局的密钥记录无法核验", "请联系区局"),
    "protocol_misuse": ("程序内部用错了协议", "请把这一行报告给区局技术支持"),
}


def explain(code: str, detail: str) -> str:
    """Staff's sentence for a refusal with ``code``, the developer's ``detail`` in brackets; a code
    without words (or a detail already in Chinese words) comes back as the detail alone."""
    words = WORDS.get(code)
    if words is None or _chinese_first(detail):
        return detail
    what, then = words
    return f"{what}，未采用：{then} ({detail})"


def explained(reason: str) -> str:
    """A reason as the hub records it, ``"code: detail"``, with the detail explained."""
    code, sep, detail = reason.partition(": ")
    return f"{code}: {explain(code, detail)}" if sep else reason


def _chinese_first(text: str) -> bool:
    for ch in text:
        if ch.isalpha():
            return "\u3400" <= ch <= "\u9fff"
    return False
