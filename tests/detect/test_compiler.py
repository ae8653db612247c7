"""The rule compiler against the Sigma specification: every value modifier and every
condition form, on small rules written inline and events written as ECS dicts.

Rules here are compiled without the processing pipelines (field names stay as
written), so each test is about matching semantics alone. Every check also runs the
rule through the engine's index, which must agree with the compiled rule.
"""

from __future__ import annotations

import base64
import textwrap
from typing import Any

import pytest
from sigma.rule import SigmaRule

from soc.detect.compiler import CompiledRule, CompileError, EventView, compile_rule, regex_literals
from soc.detect.engine import Engine
from soc.detect.loader import RuleSet, rule_info

RULE_ID = "5f0e2b4e-9a1c-4d3b-8f7e-1c2d3e4f5a6b"


def compile_detection(detection: str) -> CompiledRule:
    text = (f"title: test rule\nid: {RULE_ID}\nlogsource: {{product: test}}\ndetection:\n"
            + textwrap.indent(textwrap.dedent(detection).strip(), "    ") + "\n")
    rule = SigmaRule.from_yaml(text)
    return compile_rule(rule, rule_info(rule))


def matches(rule: CompiledRule, event: dict[str, Any]) -> bool:
    """The compiled rule's verdict, checked against the engine's (index + rule)."""
    direct = rule.match(EventView(event))
    via_index = bool(Engine(RuleSet(rules=[rule])).match(event))
    assert direct == via_index, f"index disagrees with the rule on {event}"
    return direct


def check(detection: str, hits: list[dict[str, Any]], misses: list[dict[str, Any]]) -> None:
    rule = compile_detection(detection)
    for event in hits:
        assert matches(rule, event), f"should match: {event}"
    for event in misses:
        assert not matches(rule, event), f"should not match: {event}"


# --- plain values ------------------------------------------------------------------

def test_string_equality_is_whole_value_and_case_insensitive() -> None:
    check(r"""
        sel:
            Image: 'C:\Windows\System32\cmd.exe'
        condition: sel
        """,
          hits=[{"Image": r"c:\windows\system32\CMD.EXE"}, {"Image": r"C:\Windows\System32\cmd.exe"}],
          misses=[{"Image": r"C:\Windows\System32\cmd.exe.bak"}, {"Image": "cmd.exe"}, {}])


def test_list_of_values_is_or() -> None:
    check("""
        sel:
            User: [alice, bob]
        condition: sel
        """, hits=[{"User": "Alice"}, {"User": "bob"}], misses=[{"User": "carol"}, {"User": "alice bob"}])


def test_map_is_and() -> None:
    check("""
        sel:
            EventID: 4625
            LogonType: 3
        condition: sel
        """, hits=[{"EventID": 4625, "LogonType": 3}, {"EventID": "4625", "LogonType": "3"}],
          misses=[{"EventID": 4625, "LogonType": 2}, {"EventID": 4625}])


def test_list_of_maps_is_or() -> None:
    check("""
        sel:
            - Image|endswith: '\\certutil.exe'
            - OriginalFileName: CertUtil.exe
        condition: sel
        """, hits=[{"Image": r"C:\Windows\System32\certutil.exe"}, {"OriginalFileName": "certutil.exe"}],
          misses=[{"Image": r"C:\Windows\System32\cmd.exe", "OriginalFileName": "Cmd.Exe"}])


def test_numbers_match_numbers_and_numeric_strings() -> None:
    check("""
        sel:
            EventID: 4625
        condition: sel
        """, hits=[{"EventID": 4625}, {"EventID": "4625"}, {"EventID": 4625.0}],
          misses=[{"EventID": 4624}, {"EventID": "4625 "}, {"EventID": "0x1211"}])
    # A quoted number is a string: it equals the number's text.
    check("""
        sel:
            EventID: '4625'
        condition: sel
        """, hits=[{"EventID": 4625}, {"EventID": "4625"}], misses=[{"EventID": "04625"}])


def test_booleans() -> None:
    check("""
        sel:
            Initiated: true
        condition: sel
        """, hits=[{"Initiated": True}, {"Initiated": "true"}, {"Initiated": "True"}],
          misses=[{"Initiated": False}, {"Initiated": "false"}, {}])


def test_empty_string_is_a_value() -> None:
    check("""
        sel:
            CommandLine: ''
        condition: sel
        """, hits=[{"CommandLine": ""}], misses=[{"CommandLine": "x"}, {}, {"CommandLine": None}])


def test_null_means_absent_or_null() -> None:
    check("""
        sel:
            ParentImage: null
        condition: sel
        """, hits=[{}, {"ParentImage": None}, {"ParentImage": []}], misses=[{"ParentImage": ""},
                                                                       {"ParentImage": "x"}])


def test_list_valued_fields_match_when_any_element_does() -> None:
    check("""
        sel:
            tags|contains: admin
        condition: sel
        """, hits=[{"tags": ["user", "domain-admins"]}], misses=[{"tags": ["user", "guest"]}, {"tags": []}])


def test_dotted_ecs_names_on_nested_and_flat_documents() -> None:
    check("""
        sel:
            source.ip: 10.1.2.3
            user.name: root
        condition: sel
        """, hits=[{"source": {"ip": "10.1.2.3"}, "user": {"name": "ROOT"}},
                   {"source.ip": "10.1.2.3", "user": {"name": "root"}}],
          misses=[{"source": {"ip": "10.1.2.4"}, "user": {"name": "root"}}, {"source": "10.1.2.3"}])


# --- wildcards and escapes -----------------------------------------------------------

def test_wildcards() -> None:
    # A backslash before * or ? escapes it: a path separator before a wildcard is
    # written doubled (see the escaping tests below).
    check(r"""
        sel:
            Image: 'C:\Windows\\*\c?d.exe'
        condition: sel
        """, hits=[{"Image": r"C:\Windows\System32\cmd.exe"}, {"Image": r"c:\windows\syswow64\CAD.EXE"}],
          misses=[{"Image": r"C:\Windows\System32\cmmd.exe"}, {"Image": r"D:\Windows\System32\cmd.exe"}])


def test_escaped_wildcards_are_literal() -> None:
    check(r"""
        sel:
            CommandLine: 'echo \*\?'
        condition: sel
        """, hits=[{"CommandLine": "echo *?"}], misses=[{"CommandLine": "echo ab"}, {"CommandLine": "echo x?"}])


def test_backslashes_before_plain_and_special_characters() -> None:
    # A backslash before an ordinary character is itself; a doubled backslash before
    # a wildcard is one literal backslash followed by the wildcard.
    check(r"""
        sel:
            Image: 'C:\\*'
        condition: sel
        """, hits=[{"Image": "C:\\Windows\\x.exe"}], misses=[{"Image": "C:Windows"}])


# --- string modifiers ----------------------------------------------------------------

def test_contains_startswith_endswith() -> None:
    check("""
        sel:
            CommandLine|contains: ' -enc '
            Image|startswith: 'C:\\Users\\'
            ParentImage|endswith: '\\winword.exe'
        condition: sel
        """,
          hits=[{"CommandLine": "powershell -ENC abc", "Image": "c:\\users\\bob\\x.exe",
                 "ParentImage": "C:\\Program Files\\Office\\WINWORD.EXE"}],
          misses=[{"CommandLine": "powershell -enc", "Image": "c:\\users\\bob\\x.exe",
                   "ParentImage": "C:\\Program Files\\Office\\WINWORD.EXE"},
                  {"CommandLine": "powershell -enc abc", "Image": "d:\\c:\\users\\x.exe",
                   "ParentImage": "winword.exe"}])


def test_all_modifier() -> None:
    check("""
        sel:
            CommandLine|contains|all:
                - ' -nop '
                - ' -w hidden '
        condition: sel
        """, hits=[{"CommandLine": "powershell -w hidden -nop -c x"}],
          misses=[{"CommandLine": "powershell -nop -c x"}])


def test_cased_modifier() -> None:
    check("""
        sel:
            CommandLine|cased|contains: 'FromBase64String'
        condition: sel
        """, hits=[{"CommandLine": "[Convert]::FromBase64String('x')"}],
          misses=[{"CommandLine": "[convert]::frombase64string('x')"}])


def test_windash_modifier() -> None:
    check("""
        sel:
            CommandLine|windash|contains: ' -exec bypass'
        condition: sel
        """, hits=[{"CommandLine": "powershell -exec bypass"}, {"CommandLine": "powershell /exec bypass"},
                   {"CommandLine": "powershell \u2013exec bypass"}, {"CommandLine": "powershell \u2014exec bypass"},
                   {"CommandLine": "powershell \u2015exec bypass"}],
          misses=[{"CommandLine": "powershell exec bypass"}])


def test_base64_modifier() -> None:
    encoded = base64.b64encode(b"http://evil").decode()
    check("""
        sel:
            CommandLine|base64|contains: 'http://evil'
        condition: sel
        """, hits=[{"CommandLine": f"echo {encoded} | base64 -d"}], misses=[{"CommandLine": "echo http://evil"}])


def test_base64offset_modifier_finds_the_value_at_any_offset() -> None:
    rule = compile_detection("""
        sel:
            CommandLine|base64offset|contains: 'http://'
        condition: sel
        """)
    for prefix in (b"", b"a", b"ab", b"abc"):
        encoded = base64.b64encode(prefix + b"http://example.org/x").decode()
        assert matches(rule, {"CommandLine": f"powershell -e {encoded}"}), prefix
    assert not matches(rule, {"CommandLine": base64.b64encode(b"https://example.org").decode()})


def test_utf16le_wide_modifier_with_base64offset() -> None:
    # The specification's example: PowerShell's -EncodedCommand is UTF-16LE base64.
    rule = compile_detection("""
        sel:
            CommandLine|wide|base64offset|contains: 'ping'
        condition: sel
        """)
    for prefix in ("", "x", "xy"):
        encoded = base64.b64encode(f"{prefix}ping 127.0.0.1".encode("utf-16le")).decode()
        assert matches(rule, {"CommandLine": f"powershell -enc {encoded}"}), prefix
    assert not matches(rule, {"CommandLine": base64.b64encode(b"ping 127.0.0.1").decode()})
    same = compile_detection("""
        sel:
            CommandLine|utf16le|base64offset|contains: 'ping'
        condition: sel
        """)
    assert matches(same, {"CommandLine": base64.b64encode("ping".encode("utf-16le")).decode()})


def test_utf16be_and_utf16_modifiers() -> None:
    check("""
        sel:
            Payload|utf16be|base64|contains: 'cmd'
        condition: sel
        """, hits=[{"Payload": "x" + base64.b64encode("cmd".encode("utf-16-be")).decode()}],
          misses=[{"Payload": base64.b64encode("cmd".encode("utf-16-le")).decode()}])
    # utf16 is UTF-16LE with a byte order mark. pySigma 1.5.1 keeps the BOM as the
    # character U+FEFF (so with base64 it encodes it as UTF-8, EF BB BF, where the
    # specification has FF FE): the engine matches the value pySigma produces.
    check("""
        sel:
            Payload|utf16|contains: 'cmd'
        condition: sel
        """, hits=[{"Payload": "x\ufeffc\x00m\x00d\x00y"}], misses=[{"Payload": "c\x00m\x00d\x00"}])


def test_expand_without_a_value_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="known_admins"):
        compile_detection("""
            sel:
                User|expand: '%known_admins%'
            condition: sel
            """)


# --- regular expressions ----------------------------------------------------------------

def test_re_is_case_sensitive_and_searches() -> None:
    check("""
        sel:
            CommandLine|re: '\\s-[eE]nc?\\s'
        condition: sel
        """, hits=[{"CommandLine": "powershell -enc AAA"}, {"CommandLine": "powershell -Enc AAA"}],
          misses=[{"CommandLine": "powershell -ENC AAA"}])


def test_re_flags_i_m_s() -> None:
    check("""
        sel:
            CommandLine|re|i: 'INVOKE-EXPRESSION'
        condition: sel
        """, hits=[{"CommandLine": "iex; invoke-expression $x"}], misses=[{"CommandLine": "invoke-command"}])
    check("""
        sel:
            Text|re|m: '^second'
        condition: sel
        """, hits=[{"Text": "first\nsecond line"}], misses=[{"Text": "first second"}])
    check("""
        sel:
            Text|re|s: 'begin.+end'
        condition: sel
        """, hits=[{"Text": "begin\nmiddle\nend"}], misses=[{"Text": "end begin"}])
    check("""
        sel:
            Text|re: 'begin.+end'
        condition: sel
        """, hits=[{"Text": "begin middle end"}], misses=[{"Text": "begin\nend"}])


def test_re_of_literals_joined_by_dot_star() -> None:
    # Rewritten as ordered substring searches (no backtracking): same answers.
    pattern = r"\+.*\+.*\+.*\+"
    check(f"""
        sel:
            CommandLine|re: '{pattern}'
        condition: sel
        """, hits=[{"CommandLine": "a+b+c+d+"}, {"CommandLine": "x\n++++"}],
          misses=[{"CommandLine": "a+b+c"}, {"CommandLine": "a+b\n+c+"}])


def test_regex_literals_are_necessary() -> None:
    import re

    assert regex_literals(re.compile(r"\$\{?input\}?|noexit.+powershell")) == {"input", "powershell"}
    assert regex_literals(re.compile("a?b")) == {"b"}
    assert regex_literals(re.compile("[0-9]+")) is None
    # Under IGNORECASE, 's' and 'i' also match non-ASCII letters: they end a literal.
    assert regex_literals(re.compile("(?i)mimikatz")) == {"katz"}


# --- numeric, network, presence and field references ----------------------------------------

def test_numeric_comparisons() -> None:
    check("""
        sel:
            Count|gt: 10
            Size|lte: 100
        condition: sel
        """, hits=[{"Count": 11, "Size": 100}, {"Count": "11", "Size": "99.5"}],
          misses=[{"Count": 10, "Size": 100}, {"Count": 11, "Size": 101}, {"Count": "many", "Size": 1}])
    check("""
        sel:
            Count|gte: 10
            Size|lt: 100
        condition: sel
        """, hits=[{"Count": 10, "Size": 99}], misses=[{"Count": 9, "Size": 99}, {"Count": 10, "Size": 100}])


def test_neq_modifier() -> None:
    check("""
        sel:
            EventID: 4624
            LogonType|neq: 3
        condition: sel
        """, hits=[{"EventID": 4624, "LogonType": 10}], misses=[{"EventID": 4624, "LogonType": "3"}])


def test_cidr_modifier_v4_and_v6() -> None:
    check("""
        sel:
            DestinationIp|cidr:
                - 10.0.0.0/8
                - 2001:db8::/32
        condition: sel
        """, hits=[{"DestinationIp": "10.200.1.1"}, {"DestinationIp": "2001:db8:1::5"}],
          misses=[{"DestinationIp": "11.0.0.1"}, {"DestinationIp": "2001:db9::1"}, {"DestinationIp": "nope"}])


def test_exists_modifier() -> None:
    check("""
        sel:
            CommandLine|exists: true
        condition: sel
        """, hits=[{"CommandLine": "x"}, {"CommandLine": None}, {"CommandLine": ""}], misses=[{}])
    check("""
        sel:
            CommandLine|exists: false
        condition: sel
        """, hits=[{}], misses=[{"CommandLine": None}])


def test_fieldref_modifier() -> None:
    check("""
        sel:
            Image|fieldref: ParentImage
        condition: sel
        """, hits=[{"Image": "C:\\a.exe", "ParentImage": "c:\\A.EXE"}],
          misses=[{"Image": "C:\\a.exe", "ParentImage": "C:\\b.exe"}, {"Image": "C:\\a.exe"}])
    check("""
        sel:
            CommandLine|fieldref|contains: Image
        condition: sel
        """, hits=[{"CommandLine": "\"C:\\a.exe\" -x", "Image": "C:\\a.exe"}],
          misses=[{"CommandLine": "b.exe -x", "Image": "C:\\a.exe"}])
    check("""
        sel:
            TargetFilename|fieldref|startswith: CurrentDirectory
        condition: sel
        """, hits=[{"TargetFilename": "C:\\w\\x.txt", "CurrentDirectory": "C:\\w\\"}],
          misses=[{"TargetFilename": "C:\\x.txt", "CurrentDirectory": "C:\\w\\"}])


def test_timestamp_part_modifiers() -> None:
    check("""
        sel:
            '@timestamp|hour': 22
            '@timestamp|month': 5
        condition: sel
        """, hits=[{"@timestamp": "2024-05-01T22:10:00.000Z"}], misses=[{"@timestamp": "2024-05-01T21:10:00.000Z"}])


# --- keywords ----------------------------------------------------------------------

def test_keywords_search_original_and_message() -> None:
    check("""
        keywords:
            - 'no access-session port-control'
            - 'dot1x*force'
        condition: keywords
        """,
          hits=[{"event": {"original": "User:admin logged command:NO ACCESS-SESSION PORT-CONTROL"}},
                {"message": "cfg: dot1x port-control force-authorized"}],
          misses=[{"event": {"original": "access-session port-control"}}, {"other": "dot1x force"}])


def test_keyword_and_field_selections_combine() -> None:
    check("""
        keywords:
            - 'failed password'
        sel:
            process.name: sshd
        condition: keywords and sel
        """, hits=[{"message": "Failed password for root", "process": {"name": "sshd"}}],
          misses=[{"message": "Failed password for root", "process": {"name": "su"}}])


# --- conditions ----------------------------------------------------------------------

def test_and_or_not_and_parentheses() -> None:
    check("""
        a:
            A: 1
        b:
            B: 1
        c:
            C: 1
        condition: (a or b) and not c
        """, hits=[{"A": 1}, {"B": 1}, {"A": 1, "B": 1}], misses=[{"A": 1, "C": 1}, {"C": 1}, {}])


def test_one_of_and_all_of_patterns() -> None:
    one = """
        selection_img:
            Image|endswith: '\\rundll32.exe'
        selection_cli:
            CommandLine|contains: 'javascript:'
        filter_main:
            ParentImage|endswith: '\\explorer.exe'
        condition: 1 of selection_* and not 1 of filter_*
        """
    check(one, hits=[{"Image": "c:\\rundll32.exe"}, {"CommandLine": "x javascript:y"}],
          misses=[{"Image": "c:\\rundll32.exe", "ParentImage": "c:\\explorer.exe"}, {}])
    check(one.replace("1 of selection_*", "all of selection_*"),
          hits=[{"Image": "c:\\rundll32.exe", "CommandLine": "javascript:x"}],
          misses=[{"Image": "c:\\rundll32.exe"}])


def test_them() -> None:
    base = """
        a:
            A: 1
        b:
            B: 1
        condition: {}
        """
    check(base.format("1 of them"), hits=[{"A": 1}, {"B": 1}], misses=[{}])
    check(base.format("all of them"), hits=[{"A": 1, "B": 1}], misses=[{"A": 1}])


def test_quantifier_without_matching_detection_drops_out() -> None:
    check("""
        selection:
            A: 1
        condition: selection and not 1 of filter_*
        """, hits=[{"A": 1}], misses=[{}])


def test_several_conditions_are_alternatives() -> None:
    check("""
        a:
            A: 1
        b:
            B: 1
        condition:
            - a
            - b
        """, hits=[{"A": 1}, {"B": 1}], misses=[{"C": 1}])


def test_undefined_detection_is_an_error() -> None:
    from sigma.exceptions import SigmaError

    with pytest.raises((CompileError, SigmaError)):
        compile_detection("""
            a:
                A: 1
            condition: a and missing
            """)
