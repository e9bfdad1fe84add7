"""argparse's own words in Chinese: "usage", "options", "show this help message and exit", and the usage
errors staff meet ("the following arguments are required").

argparse looks each of its messages up through the module-level ``_`` (gettext) when it prints, so
replacing that one function translates them all without a message catalogue to build and install.
A message not in the table stays as argparse wrote it.
"""

from __future__ import annotations

import argparse

WORDS = {
    "usage: ": "用法：",
    "positional arguments": "必填参数",
    "options": "选项",
    "show this help message and exit": "显示本帮助后退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s：出错：%(message)s\n",
    "the following arguments are required: %s": "缺少必填参数：%s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "取值 %(value)r 无效（可选：%(choices)s）",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "expected one argument": "须跟一个值",
    "expected at least one argument": "至少须跟一个值",
    "expected at most one argument": "至多跟一个值",
    "invalid %(type)s value: %(value)r": "%(value)r 不是有效的 %(type)s 值",
    "ambiguous option: %(option)s could match %(matches)s": "选项 %(option)s 有歧义，可能是 %(matches)s",
    "one of the arguments %s is required": "须给出其中一个参数：%s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "can't open '%(filename)s': %(error)s": "无法打开「%(filename)s」：%(error)s",
}


def _words(message: str) -> str:
    return WORDS.get(message, message)


def install() -> None:
    """Make argparse speak Chinese in this process (``sanji`` calls it before building its parser)."""
    argparse._ = _words  # type: ignore[attr-defined]
