"""Linux authentication program parsers: sshd, PAM, sudo, su, login, and the
shadow-utils user and group tools, on loghub, Wazuh and hand-written lines."""

from __future__ import annotations

import json
from functools import cache

import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import Event, get_field
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.base import program_parser
from collectors.parsers.linux_auth import parse_account_change, parse_pam, parse_sshd, parse_su, parse_sudo
from tests.conftest import DATASETS

LOGHUB = DATASETS / "logs" / "loghub"
WAZUH = DATASETS / "logs" / "wazuh"


@cache
def loghub_lines(system: str) -> tuple[str, ...]:
    return tuple((LOGHUB / system / f"{system}_2k.log.part1").read_text(encoding="utf-8").splitlines())


@cache
def wazuh_logs(name: str) -> tuple[str, ...]:
    lines = (WAZUH / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line)["log"] for line in lines if line.strip())


def first(lines: tuple[str, ...], fragment: str) -> str:
    found = next((line for line in lines if fragment in line), None)
    assert found is not None, fragment
    return found


def parse(line: str, ctx: ParseContext) -> Event:
    return Dispatcher().parse(line, None, ctx)


def fields(event: Event, *paths: str) -> tuple[object, ...]:
    return tuple(get_field(event, path) for path in paths)


AUTH = ("event.category", "event.type", "event.action", "event.outcome")


# --- registration -------------------------------------------------------------------------

@pytest.mark.parametrize(("program", "parser"), [
    ("sshd", parse_sshd), ("sshd(pam_unix)", parse_sshd), ("sshd-session", parse_sshd),
    ("sudo", parse_sudo), ("su", parse_su), ("su(pam_unix)", parse_su),
    ("useradd", parse_account_change), ("groupdel", parse_account_change), ("chpasswd", parse_account_change),
])
def test_programs_are_registered(program: str, parser: object) -> None:
    assert program_parser(program) is parser


@pytest.mark.parametrize("program", ["crond", "CRON", "login", "gdm-password", "systemd"])
def test_pam_programs_are_registered(program: str) -> None:
    assert program_parser(program) is not None


# --- sshd on loghub OpenSSH -------------------------------------------------------------------

def test_every_openssh_line_is_a_system_auth_event(ctx: ParseContext) -> None:
    for line in loghub_lines("OpenSSH"):
        event = parse(line, ctx)
        assert fields(event, "event.kind", "event.module", "event.dataset") == (
            "event", "system", "system.auth"), line


def test_sshd_failed_password(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Failed password for root from 5.36.59.76"), ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "ssh_login", "failure")
    assert fields(event, "user.name", "source.ip", "source.port") == ("root", "5.36.59.76", 42393)
    assert event["related"] == {"user": ["root"], "ip": ["5.36.59.76"]}
    assert get_field(event, "system.auth.ssh.method") == "password"


def test_sshd_failed_password_for_invalid_user(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Failed password for invalid user webmaster"), ctx)
    assert fields(event, "event.outcome", "user.name", "source.ip") == (
        "failure", "webmaster", "173.234.31.186")
    assert get_field(event, "system.auth.ssh.event") == "Invalid"


def test_sshd_failed_none_for_invalid_user(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Failed none for invalid user 0 "), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "source.ip", "source.port") == (
        "ssh_login", "failure", "0", "5.188.10.180", 49811)


def test_sshd_invalid_user(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Invalid user webmaster from"), ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "invalid_user", "failure")
    assert fields(event, "user.name", "source.ip") == ("webmaster", "173.234.31.186")


def test_sshd_input_userauth_request_invalid_user(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "input_userauth_request: invalid user webmaster"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name") == (
        "invalid_user", "failure", "webmaster")


def test_sshd_accepted_password(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Accepted password for fztu"), ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "ssh_login", "success")
    assert fields(event, "user.name", "source.ip", "source.port") == ("fztu", "119.137.62.142", 49116)


def test_sshd_pam_authentication_failure_with_rhost_name(ctx: ParseContext) -> None:
    line = first(loghub_lines("OpenSSH"), "pam_unix(sshd:auth): authentication failure;")
    event = parse(line, ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "authentication_failure", "failure")
    assert get_field(event, "system.auth.pam.module") == "pam_unix"
    assert get_field(event, "system.auth.pam.type") == "auth"


def test_sshd_pam_authentication_failure_with_rhost_ip(ctx: ParseContext) -> None:
    line = first(loghub_lines("OpenSSH"), "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                                         "rhost=173.234.31.186")
    event = parse(line, ctx)
    assert fields(event, "event.outcome", "source.ip", "source.address") == (
        "failure", "173.234.31.186", "173.234.31.186")


def test_sshd_pam_authentication_failure_with_user(ctx: ParseContext) -> None:
    line = first(loghub_lines("OpenSSH"), "rhost=5.36.59.76.dynamic-dsl-ip.omantel.net.om  user=root")
    event = parse(line, ctx)
    assert fields(event, "user.name", "source.domain", "source.ip") == (
        "root", "5.36.59.76.dynamic-dsl-ip.omantel.net.om", None)


def test_sshd_pam_more_authentication_failures(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "PAM 5 more authentication failures"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name") == (
        "authentication_failure", "failure", "root")
    assert get_field(event, "system.auth.pam.failures") == 5


def test_sshd_check_pass_user_unknown(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "check pass; user unknown"), ctx)
    assert fields(event, "event.action", "event.outcome") == ("user_unknown", "failure")


def test_sshd_pam_session_opened(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "session opened for user fztu"), ctx)
    assert fields(event, *AUTH) == (["session"], ["start"], "session_opened", "success")
    assert get_field(event, "user.name") == "fztu"


def test_sshd_message_repeated_is_read_inside(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "message repeated 5 times"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "source.ip") == (
        "ssh_login", "failure", "root", "5.36.59.76")
    assert get_field(event, "system.auth.repeated") == 5


def test_sshd_reverse_mapping_possible_break_in(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "reverse mapping checking getaddrinfo"), ctx)
    assert fields(event, "event.action", "source.ip", "source.domain") == (
        "reverse_mapping_failed", "173.234.31.186", "ns.marryaldkfaczcz.com")


def test_sshd_did_not_receive_identification(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Did not receive identification string"), ctx)
    assert fields(event, "event.action", "source.ip") == ("no_identification_string", "123.235.32.19")


def test_sshd_too_many_authentication_failures(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Too many authentication failures for root"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name") == (
        "max_auth_attempts", "failure", "root")


def test_sshd_received_disconnect_old_form(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Received disconnect from 52.80.34.196: 11: Bye Bye"), ctx)
    assert fields(event, "event.action", "source.ip", "event.reason") == (
        "ssh_disconnect", "52.80.34.196", "Bye Bye")


def test_sshd_error_received_disconnect_with_auth_fail(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "error: Received disconnect from 195.154.37.122"), ctx)
    assert fields(event, "event.category", "event.outcome", "source.ip") == (
        ["authentication"], "failure", "195.154.37.122")


def test_sshd_connection_closed_preauth(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("OpenSSH"), "Connection closed by 173.234.31.186 [preauth]"), ctx)
    assert fields(event, "event.action", "source.ip") == ("ssh_connection_closed", "173.234.31.186")


# --- sshd on Wazuh and modern OpenSSH lines ----------------------------------------------------

@pytest.mark.parametrize(("fragment", "action", "outcome", "user", "ip"), [
    ("Failed password for user from 172.18.1.100", "ssh_login", "failure", "user", "172.18.1.100"),
    ("error: PAM: authentication error for user", "authentication_failure", "failure", "user", "192.168.33.1"),
    ("Disconnected from user user 172.18.1.100", "ssh_disconnect", None, "user", "172.18.1.100"),
    ("Disconnecting invalid user root", "ssh_disconnect", None, "root", "172.18.1.100"),
    ("Connection reset by authenticating user", "ssh_connection_reset", None, "user", "192.168.33.1"),
    ("not listed in AllowUsers", "user_not_allowed", "failure", "root", "192.168.33.1"),
    ("listed in DenyUsers", "user_not_allowed", "failure", "root", "172.18.1.100"),
    ("Bad protocol version identification", "bad_protocol_version", None, None, "172.18.1.1"),
    ("Unable to negotiate with 108.229.36.174", "negotiation_failed", "failure", None, "108.229.36.174"),
    ("Address 192.168.18.54 maps to", "reverse_mapping_failed", None, None, "192.168.18.54"),
    ("Invalid user user from 212.64.151.233", "invalid_user", "failure", "user", "212.64.151.233"),
])
def test_wazuh_sshd_lines(ctx: ParseContext, fragment: str, action: str, outcome: str | None,
                          user: str | None, ip: str) -> None:
    event = parse(first(wazuh_logs("sshd"), fragment), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "source.ip") == (
        action, outcome, user, ip)


def test_every_wazuh_sshd_line_is_a_system_auth_event(ctx: ParseContext) -> None:
    for line in wazuh_logs("sshd"):
        assert get_field(parse(line, ctx), "event.dataset") == "system.auth", line


def test_unrecognised_sshd_message_about_authentication_gets_the_category(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:20 srv sshd[1]: Authentication refused: bad ownership or modes for "
                  "directory /home/bob", ctx)
    assert fields(event, "event.dataset", "event.category", "event.action") == (
        "system.auth", ["authentication"], None)


def test_unrecognised_sshd_message_otherwise_gets_only_dataset(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("sshd"), "Bad packet length"), ctx)
    assert event["event"] == {"kind": "event", "module": "system", "dataset": "system.auth"}


@pytest.mark.parametrize(("message", "action", "outcome", "user", "ip"), [
    ("Accepted publickey for alice from 10.1.2.3 port 50022 ssh2: RSA SHA256:abc",
     "ssh_login", "success", "alice", "10.1.2.3"),
    ("Accepted keyboard-interactive/pam for bob from 10.1.2.4 port 50023 ssh2",
     "ssh_login", "success", "bob", "10.1.2.4"),
    ("Failed publickey for invalid user admin from 185.220.101.5 port 4444 ssh2",
     "ssh_login", "failure", "admin", "185.220.101.5"),
    ("Invalid user oracle from 185.220.101.5 port 4444", "invalid_user", "failure", "oracle", "185.220.101.5"),
    ("error: maximum authentication attempts exceeded for invalid user admin from 185.220.101.5 port 4444 "
     "ssh2 [preauth]", "max_auth_attempts", "failure", "admin", "185.220.101.5"),
    ("Connection closed by authenticating user root 185.220.101.5 port 4444 [preauth]",
     "ssh_connection_closed", None, "root", "185.220.101.5"),
    ("Disconnected from invalid user admin 185.220.101.5 port 4444 [preauth]",
     "ssh_disconnect", None, "admin", "185.220.101.5"),
    ("Received disconnect from 185.220.101.5 port 4444:11: Bye Bye [preauth]",
     "ssh_disconnect", None, None, "185.220.101.5"),
    ("Did not receive identification string from 185.220.101.5 port 4444",
     "no_identification_string", None, None, "185.220.101.5"),
])
def test_modern_openssh_messages(ctx: ParseContext, message: str, action: str, outcome: str | None,
                                 user: str | None, ip: str) -> None:
    event = parse(f"Nov 20 10:00:20 srv sshd[700]: {message}", ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "source.ip") == (
        action, outcome, user, ip)


def test_accepted_publickey_keeps_the_key_signature(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:20 srv sshd[700]: Accepted publickey for alice from 10.1.2.3 port 50022 "
                  "ssh2: RSA SHA256:abcdef", ctx)
    assert get_field(event, "system.auth.ssh.signature") == "RSA SHA256:abcdef"


# --- PAM forms ----------------------------------------------------------------------------------

def test_linux_pam_tag_authentication_failure_with_host_rhost(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("Linux"), "rhost=220-135-151-1.hinet-ip.hinet.net  user=root"), ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "authentication_failure", "failure")
    assert fields(event, "user.name", "source.address", "source.domain") == (
        "root", "220-135-151-1.hinet-ip.hinet.net", "220-135-151-1.hinet-ip.hinet.net")
    assert get_field(event, "system.auth.pam.module") == "pam_unix"
    assert get_field(event, "system.auth.pam.service") == "sshd"


def test_linux_su_pam_session_opened(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("Linux"), "su(pam_unix)[21416]: session opened for user cyrus"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name") == ("session_opened", "success", "cyrus")


def test_linux_login_session_by_login_names_the_session_user(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("Linux"), "login(pam_unix)"), ctx)
    assert fields(event, "event.action", "user.name", "user.effective.name") == ("session_opened", "root", None)


def test_thunderbird_crond_pam_sessions(ctx: ParseContext) -> None:
    lines = loghub_lines("Thunderbird")
    opened = parse(first(lines, "crond(pam_unix)[2915]: session opened"), ctx)
    closed = parse(first(lines, "crond(pam_unix)[2915]: session closed"), ctx)
    assert fields(opened, "event.type", "event.action", "user.name") == (["start"], "session_opened", "root")
    assert fields(closed, "event.type", "event.action", "user.name") == (["end"], "session_closed", "root")
    assert opened["event"]["dataset"] == "system.auth"


def test_thunderbird_crond_command_lines_stay_generic(ctx: ParseContext) -> None:
    event = parse(first(loghub_lines("Thunderbird"), "crond[2916]: (root) CMD"), ctx)
    assert event["event"]["dataset"] == "syslog"


def test_wazuh_pam_su_failure_names_requesting_and_target_user(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("pam"), "ruser=dcid rhost=  user=osaudit"), ctx)
    assert fields(event, "event.outcome", "user.name", "user.effective.name", "source.ip") == (
        "failure", "dcid", "osaudit", None)
    assert event["related"]["user"] == ["dcid", "osaudit"]


def test_wazuh_pam_more_authentication_failures(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("pam"), "2 more authentication failures"), ctx)
    assert fields(event, "event.outcome", "user.name", "source.ip", "system.auth.pam.failures") == (
        "failure", "root", "10.0.3.1", 2)


def test_pam_session_with_uids_and_initiator(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:19 srv sudo: pam_unix(sudo:session): session opened for user root(uid=0) "
                  "by bob(uid=1000)", ctx)
    assert fields(event, "event.action", "user.name", "user.effective.name") == ("session_opened", "bob", "root")


def test_non_pam_message_is_not_claimed_by_the_pam_reader() -> None:
    event: Event = {}
    assert parse_pam("sudo", "bob : TTY=pts/0 ; COMMAND=/bin/ls", event) is False
    assert event == {}


def test_pam_password_change_is_an_iam_event(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:18 srv passwd[505]: pam_unix(passwd:chauthtok): password changed for bob", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "user.target.name") == (
        ["iam"], ["user", "change"], "password_changed", "bob")


# --- sudo ----------------------------------------------------------------------------------------

def test_wazuh_sudo_command(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("sudo"), "COMMAND=/usr/bin/tail"), ctx)
    assert fields(event, *AUTH) == (["process"], ["start"], "sudo", "success")
    assert fields(event, "user.name", "user.effective.name", "process.command_line",
                  "process.working_directory") == (
        "dcid", "root", "/usr/bin/tail /var/log/snort/alert.fast", "/home/dcid")
    assert event["related"]["user"] == ["dcid", "root"]


def test_wazuh_sudo_with_extra_keys(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("sudo"), "TSID=0000UM"), ctx)
    assert fields(event, "user.name", "process.command_line", "system.auth.sudo.tsid") == (
        "cplummer", "/bin/bash", "0000UM")


def test_wazuh_sudo_user_not_in_sudoers(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("sudo"), "user NOT in sudoers"), ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "sudo_denied", "failure")
    assert fields(event, "user.name", "event.reason") == ("ddp2", "user NOT in sudoers")


def test_sudo_incorrect_password_attempts(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:19 srv sudo:      bob : 3 incorrect password attempts ; TTY=pts/0 ; "
                  "PWD=/home/bob ; USER=root ; COMMAND=/bin/bash", ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "sudo_auth_failed", "failure")
    assert fields(event, "user.name", "user.effective.name") == ("bob", "root")


def test_sudo_command_keeps_semicolons(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:19 srv sudo: bob : TTY=pts/0 ; PWD=/ ; USER=root ; "
                  "COMMAND=/bin/sh -c echo a ; echo b", ctx)
    assert get_field(event, "process.command_line") == "/bin/sh -c echo a ; echo b"


def test_sudo_pam_authentication_failure(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:19 srv sudo: pam_unix(sudo:auth): authentication failure; logname=bob "
                  "uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=  user=bob", ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "user.effective.name") == (
        "authentication_failure", "failure", "bob", None)


# --- su ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("message", "outcome", "user", "target"), [
    ("Successful su for root by bob", "success", "bob", "root"),
    ("FAILED su for root by bob", "failure", "bob", "root"),
    ("+ pts/0 bob:root", "success", "bob", "root"),
    ("- pts/0 bob:root", "failure", "bob", "root"),
    ("(to root) bob on pts/1", "success", "bob", "root"),
    ("FAILED SU (to root) bob on pts/1", "failure", "bob", "root"),
])
def test_su_forms(ctx: ParseContext, message: str, outcome: str, user: str, target: str) -> None:
    event = parse(f"Nov 20 10:00:19 srv su[600]: {message}", ctx)
    assert fields(event, *AUTH) == (["authentication"], ["start"], "su", outcome)
    assert fields(event, "user.name", "user.effective.name") == (user, target)


def test_wazuh_su_failed_changing(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("su"), "failed: ttyq4 changing from ldap to root"), ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "user.effective.name") == (
        "su", "failure", "ldap", "root")


def test_su_pam_session_opened_by_user(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:19 srv su[600]: pam_unix(su:session): session opened for user root by "
                  "bob(uid=1000)", ctx)
    assert fields(event, "event.action", "user.name", "user.effective.name") == (
        "session_opened", "bob", "root")


def test_rfc5424_example_su_failure(ctx: ParseContext) -> None:
    event = parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                  "\ufeff'su root' failed for lonvick on /dev/pts/8", ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "user.effective.name") == (
        "su", "failure", "lonvick", "root")


# --- login, systemd-logind -----------------------------------------------------------------------

def test_login_failed(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:21 srv login[800]: FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure",
                  ctx)
    assert fields(event, "event.action", "event.outcome", "user.name", "event.reason") == (
        "login", "failure", "root", "Authentication failure")


def test_systemd_logind_new_session(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:21 srv systemd-logind[1]: New session 3 of user bob.", ctx)
    assert fields(event, "event.category", "event.action", "user.name", "system.auth.session_id") == (
        ["session"], "session_opened", "bob", "3")


# --- users and groups ----------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "types", "action", "expected"), [
    ("useradd[500]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
     ["user", "creation"], "user_created", {"user.target.name": "bob", "user.target.id": "1001",
                                            "group.id": "1001"}),
    ("useradd[500]: new group: name=bob, GID=1001",
     ["group", "creation"], "group_created", {"group.name": "bob", "group.id": "1001"}),
    ("groupadd[501]: group added to /etc/group: name=devs, GID=1002",
     ["group", "creation"], "group_created", {"group.name": "devs", "group.id": "1002"}),
    ("useradd[500]: add 'bob' to group 'sudo'",
     ["group", "change"], "group_member_added", {"user.target.name": "bob", "group.name": "sudo"}),
    ("usermod[502]: add 'bob' to shadow group 'sudo'",
     ["group", "change"], "group_member_added", {"user.target.name": "bob", "group.name": "sudo"}),
    ("userdel[503]: delete 'bob' from group 'sudo'",
     ["group", "change"], "group_member_removed", {"user.target.name": "bob", "group.name": "sudo"}),
    ("userdel[503]: delete user 'bob'",
     ["user", "deletion"], "user_deleted", {"user.target.name": "bob"}),
    ("userdel[503]: removed group 'bob' owned by 'bob'",
     ["group", "deletion"], "group_deleted", {"group.name": "bob"}),
    ("groupdel[504]: group 'devs' removed",
     ["group", "deletion"], "group_deleted", {"group.name": "devs"}),
    ("groupmod[508]: group changed in /etc/group (group devs/1002, new name: developers)",
     ["group", "change"], "group_modified", {"group.name": "devs", "group.id": "1002"}),
    ("usermod[506]: change user 'bob' password",
     ["user", "change"], "password_changed", {"user.target.name": "bob"}),
    ("passwd[505]: password for 'bob' changed by 'root'",
     ["user", "change"], "password_changed", {"user.target.name": "bob", "user.name": "root"}),
    ("chpasswd[510]: pam_unix(chpasswd:chauthtok): password changed for bob",
     ["user", "change"], "password_changed", {"user.target.name": "bob"}),
    ("usermod[506]: change user name 'bob' to 'robert'",
     ["user", "change"], "user_renamed", {"user.target.name": "bob", "user.changes.name": "robert"}),
    ("usermod[506]: lock user 'bob' password",
     ["user", "change"], "user_locked", {"user.target.name": "bob"}),
    ("usermod[506]: change user 'bob' shell from '/bin/sh' to '/bin/bash'",
     ["user", "change"], "user_modified", {"user.target.name": "bob"}),
    ("gpasswd[507]: user bob added by root to group sudo",
     ["group", "change"], "group_member_added", {"user.target.name": "bob", "user.name": "root",
                                                 "group.name": "sudo"}),
    ("gpasswd[507]: user bob removed by root from group sudo",
     ["group", "change"], "group_member_removed", {"user.target.name": "bob", "group.name": "sudo"}),
    ("chage[509]: changed password expiry for bob",
     ["user", "change"], "password_expiry_changed", {"user.target.name": "bob"}),
])
def test_account_and_group_changes(ctx: ParseContext, line: str, types: list[str], action: str,
                                   expected: dict[str, str]) -> None:
    event = parse(f"Nov 20 10:00:18 srv {line}", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "event.outcome") == (
        ["iam"], types, action, "success")
    for path, value in expected.items():
        assert get_field(event, path) == value, path


def test_unknown_useradd_message_is_left_to_generic_syslog(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:18 srv useradd[500]: something unexpected", ctx)
    assert event["event"]["dataset"] == "syslog"


# --- common fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "Nov 20 10:00:20 srv sshd[700]: Server listening on 0.0.0.0 port 22.",
    "Nov 20 10:00:19 srv sudo: bob : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
    "Nov 20 10:00:19 srv su[600]: Successful su for root by bob",
    "Nov 20 10:00:18 srv useradd[500]: new group: name=bob, GID=1001",
    "Nov 20 10:00:21 srv CRON[42]: pam_unix(cron:session): session closed for user root",
    "Nov 20 10:00:21 srv gdm-password[31]: pam_unix(gdm-password:auth): conversation failed",
])
def test_every_event_of_the_module_has_kind_module_and_dataset(ctx: ParseContext, line: str) -> None:
    event = parse(line, ctx)
    assert fields(event, "event.kind", "event.module", "event.dataset") == ("event", "system", "system.auth")
