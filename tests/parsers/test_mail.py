"""Mail system program parsers: Postfix, Dovecot, Zimbra (amavis, saslauthd,
zimbramon, mailbox/audit lines) and BIND named, on Wazuh and hand-written lines."""

from __future__ import annotations

import json
from functools import cache

import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import Event, get_field
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.base import program_parser
from collectors.parsers.mail import parse_dovecot, parse_named, parse_postfix
from tests.conftest import DATASETS

WAZUH = DATASETS / "logs" / "wazuh"
HEADER = "Nov 20 10:00:01 mail"


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


@pytest.mark.parametrize(("program", "parser"), [
    ("postfix/smtpd", parse_postfix), ("postfix/submission/smtpd", parse_postfix),
    ("postfix-out/smtp", parse_postfix), ("dovecot", parse_dovecot), ("named", parse_named),
])
def test_programs_are_registered(program: str, parser: object) -> None:
    assert program_parser(program) is parser


# --- Postfix -------------------------------------------------------------------------------

def test_smtpd_sasl_authentication_failure(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: warning: unknown[185.220.101.5]: SASL LOGIN "
                  "authentication failed: UGFzc3dvcmQ6", ctx)
    assert fields(event, "event.category", "event.action", "event.outcome", "source.ip") == (
        ["authentication"], "sasl_auth_failed", "failure", "185.220.101.5")
    assert get_field(event, "postfix.sasl_method") == "LOGIN"
    assert get_field(event, "user.name") is None


def test_smtpd_sasl_failure_names_the_user_when_postfix_logs_it(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/submission/smtpd[1234]: warning: unknown[185.220.101.5]: SASL PLAIN "
                  "authentication failed: authentication failure, sasl_username=bob@tinh.gov.vn", ctx)
    assert fields(event, "event.outcome", "user.name", "event.reason", "postfix.component") == (
        "failure", "bob@tinh.gov.vn", "authentication failure", "submission/smtpd")


def test_noqueue_reject_rcpt(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]:51234: "
                  "554 5.7.1 <x@example.com>: Relay access denied; from=<spam@evil.example> "
                  "to=<x@example.com> proto=ESMTP helo=<evil>", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "event.outcome") == (
        ["email"], ["denied"], "reject", "failure")
    assert fields(event, "email.from.address", "email.to.address", "source.ip", "source.port") == (
        "spam@evil.example", "x@example.com", "203.0.113.9", 51234)
    assert fields(event, "postfix.response_code", "postfix.dsn", "postfix.helo", "event.reason") == (
        "554", "5.7.1", "evil", "<x@example.com>: Relay access denied")
    assert get_field(event, "postfix.queue_id") is None


def test_wazuh_postscreen_reject_without_envelope(ctx: ParseContext) -> None:
    event = parse(wazuh_logs("postfix")[0], ctx)
    assert fields(event, "event.type", "event.action", "source.ip", "source.port", "postfix.stage") == (
        ["denied"], "reject", "157.122.148.242", 47407, "RCPT")
    assert fields(event, "event.dataset", "event.module", "postfix.component") == (
        "postfix.log", "postfix", "postscreen")


def test_postscreen_reject_with_comma_separated_envelope(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/postscreen[77]: NOQUEUE: reject: RCPT from [185.220.101.5]:4455: 550 "
                  "5.7.1 Service unavailable; client [185.220.101.5] blocked using zen.spamhaus.org; "
                  "from=<a@b.example>, to=<d@tinh.gov.vn>, proto=ESMTP, helo=<x>", ctx)
    assert fields(event, "email.from.address", "email.to.address", "event.reason") == (
        "a@b.example", "d@tinh.gov.vn",
        "Service unavailable; client [185.220.101.5] blocked using zen.spamhaus.org")


def test_client_line_with_sasl_login(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: 4F1A2B3C4D: client=laptop.tinh.gov.vn[10.1.2.3]:50000, "
                  "sasl_method=LOGIN, sasl_username=alice", ctx)
    assert fields(event, "event.action", "event.outcome", "user.name") == ("sasl_login", "success", "alice")
    assert fields(event, "source.ip", "source.domain", "email.local_id", "postfix.queue_id") == (
        "10.1.2.3", "laptop.tinh.gov.vn", "4F1A2B3C4D", "4F1A2B3C4D")


def test_client_line_without_sasl(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: 4F1A2B3C4D: client=unknown[198.51.100.7]", ctx)
    assert fields(event, "event.category", "event.action", "source.ip", "user.name") == (
        ["email"], "client", "198.51.100.7", None)


def test_qmgr_queued_message(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/qmgr[99]: 4F1A2B3C4D: from=<alice@tinh.gov.vn>, size=2345, nrcpt=1 "
                  "(queue active)", ctx)
    assert fields(event, "event.action", "email.from.address", "postfix.size", "postfix.nrcpt") == (
        "queued", "alice@tinh.gov.vn", 2345, 1)


def test_long_queue_ids_are_recognised(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/qmgr[99]: 4VDkQs2cJ8z9sM1: removed", ctx)
    assert fields(event, "event.action", "email.local_id") == ("removed", "4VDkQs2cJ8z9sM1")


@pytest.mark.parametrize(("line", "action", "outcome", "destination"), [
    ("postfix/smtp[555]: 4F1A2B3C4D: to=<carol@example.org>, relay=mx.example.org[198.51.100.7]:25, "
     "delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK 1234)",
     "relay", "success", "198.51.100.7"),
    ("postfix/lmtp[556]: 4F1A2B3C4D: to=<carol@example.org>, relay=127.0.0.1[127.0.0.1]:7025, delay=0.2, "
     "delays=0.1/0/0/0.1, dsn=2.1.5, status=sent (250 2.1.5 Delivery OK)",
     "delivered", "success", "127.0.0.1"),
    ("postfix/local[557]: 4F1A2B3C4D: to=<carol@example.org>, relay=local, delay=0.1, "
     "delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
     "delivered", "success", None),
    ("postfix/smtp[558]: 4F1A2B3C4D: to=<carol@example.org>, relay=none, delay=30, delays=0.1/0/30/0, "
     "dsn=4.4.1, status=deferred (connect to mx.example.net[192.0.2.1]:25: Connection timed out)",
     "deferred", None, None),
    ("postfix/smtp[559]: 4F1A2B3C4D: to=<carol@example.org>, relay=mx.example.net[192.0.2.2]:25, delay=1, "
     "delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.example.net[192.0.2.2] said: 550 5.1.1 "
     "User unknown (in reply to RCPT TO command))",
     "bounced", "failure", "192.0.2.2"),
])
def test_delivery_status(ctx: ParseContext, line: str, action: str, outcome: str | None,
                         destination: str | None) -> None:
    event = parse(f"{HEADER} {line}", ctx)
    assert fields(event, "event.category", "event.action", "event.outcome", "destination.ip") == (
        ["email"], action, outcome, destination)
    assert fields(event, "email.to.address", "email.local_id") == ("carol@example.org", "4F1A2B3C4D")
    assert get_field(event, "postfix.status") in ("sent", "deferred", "bounced")
    assert get_field(event, "postfix.relay")


def test_delivery_keeps_relay_details(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtp[555]: 4F1A2B3C4D: to=<carol@example.org>, "
                  "relay=mx.example.org[198.51.100.7]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, "
                  "status=sent (250 2.0.0 OK 1234)", ctx)
    assert event["postfix"] == {
        "component": "smtp", "queue_id": "4F1A2B3C4D", "relay": "mx.example.org[198.51.100.7]:25",
        "status": "sent", "delay": "1.2", "delays": "0.1/0/0.5/0.6", "dsn": "2.0.0",
        "response": "250 2.0.0 OK 1234"}
    assert fields(event, "destination.domain", "destination.port") == ("mx.example.org", 25)


@pytest.mark.parametrize(("message", "action", "types"), [
    ("connect from unknown[185.220.101.5]", "connect", ["connection", "start"]),
    ("disconnect from unknown[185.220.101.5] ehlo=1 auth=0/1 quit=1 commands=2/3", "disconnect",
     ["connection", "end"]),
    ("lost connection after AUTH from unknown[185.220.101.5]", "lost_connection", ["connection", "end"]),
])
def test_smtpd_connections(ctx: ParseContext, message: str, action: str, types: list[str]) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: {message}", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "source.ip") == (
        ["network"], types, action, "185.220.101.5")


def test_disconnect_keeps_the_failed_auth_count(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: disconnect from unknown[185.220.101.5] ehlo=1 auth=0/1 "
                  "quit=1 commands=2/3", ctx)
    assert get_field(event, "postfix.auth") == "0/1"


@pytest.mark.parametrize(("message", "action", "types", "ip"), [
    ("CONNECT from [185.220.101.5]:4455 to [10.0.0.2]:25", "connect", ["info"], "185.220.101.5"),
    ("DNSBL rank 3 for [185.220.101.5]:4455", "dnsbl", ["denied"], "185.220.101.5"),
    ("PREGREET 11 after 0.1 from [185.220.101.5]:4455: EHLO x", "pregreet", ["denied"], "185.220.101.5"),
    ("PASS NEW [185.220.101.6]:4456", "pass_new", ["info"], "185.220.101.6"),
])
def test_postscreen_verdicts(ctx: ParseContext, message: str, action: str, types: list[str], ip: str) -> None:
    event = parse(f"{HEADER} postfix/postscreen[77]: {message}", ctx)
    assert fields(event, "event.action", "event.type", "source.ip") == (action, types, ip)


def test_postscreen_dnsbl_rank(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/postscreen[77]: DNSBL rank 3 for [185.220.101.5]:4455", ctx)
    assert get_field(event, "postfix.dnsbl_rank") == 3


def test_cleanup_message_id(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/cleanup[88]: 4F1A2B3C4D: message-id=<20241120.ABC@tinh.gov.vn>", ctx)
    assert fields(event, "event.action", "email.message_id") == ("cleanup", "20241120.ABC@tinh.gov.vn")


def test_warning_with_unresolvable_client(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/smtpd[1234]: warning: hostname mail.bad.example does not resolve to "
                  "address 203.0.113.50: Name or service not known", ctx)
    assert fields(event, "log.level", "event.action", "source.ip", "source.domain") == (
        "warning", "warning", "203.0.113.50", "mail.bad.example")


def test_any_postfix_line_is_a_postfix_event(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} postfix/master[1]: daemon started -- version 3.6.4", ctx)
    assert fields(event, "event.kind", "event.module", "event.dataset", "postfix.component") == (
        "event", "postfix", "postfix.log", "master")


# --- Dovecot -------------------------------------------------------------------------------

def test_wazuh_dovecot_disconnected_after_failed_attempts(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("dovecot"), "7 attempts in 111 secs"), ctx)
    assert fields(event, "event.category", "event.action", "event.outcome") == (
        ["authentication"], "login_failed", "failure")
    assert fields(event, "user.name", "source.ip", "destination.ip", "network.protocol") == (
        "thousands", "109.201.200.201", "67.205.141.203", "imap")
    assert fields(event, "dovecot.attempts", "dovecot.method") == (7, "PLAIN")


@pytest.mark.parametrize(("fragment", "action", "user", "ip"), [
    ("sql(username,1.2.3.4): unknown user", "unknown_user", "username", "1.2.3.4"),
    ("pam(user@example.com,1.2.3.4): pam_authenticate() failed", "unknown_user", "user@example.com",
     "1.2.3.4"),
    ("sql(user@example.com,1.2.3.4): Password mismatch", "password_mismatch", "user@example.com", "1.2.3.4"),
    ("Aborted login: user=<username>", "login_aborted", "username", "1.2.3.4"),
])
def test_wazuh_dovecot_authentication_failures(ctx: ParseContext, fragment: str, action: str, user: str,
                                               ip: str) -> None:
    event = parse(first(wazuh_logs("dovecot"), fragment), ctx)
    assert fields(event, "event.category", "event.action", "event.outcome", "user.name", "source.ip") == (
        ["authentication"], action, "failure", user, ip)
    assert get_field(event, "event.dataset") == "dovecot.log"


def test_wazuh_dovecot_fatal_error_level(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("dovecot"), "Fatal: Auth process died"), ctx)
    assert fields(event, "event.dataset", "log.level") == ("dovecot.log", "fatal")


def test_wazuh_dovecot_log_file_line_without_host_still_parses(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("dovecot"), "Info: auth(default): passwd-file"), ctx)
    assert fields(event, "log.level", "message") == (
        "info", "auth(default): passwd-file(user@example.com,::ffff:1.2.3.4): unknown user")


def test_dovecot_successful_login(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=113.160.1.2, "
                  "lip=10.0.0.2, mpid=1234, TLS, session=<abc>", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "event.outcome") == (
        ["authentication"], ["start"], "login", "success")
    assert fields(event, "user.name", "source.ip", "destination.ip", "dovecot.session") == (
        "alice", "113.160.1.2", "10.0.0.2", "abc")


def test_dovecot_mapped_ipv4_addresses_are_plain_ipv4(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): "
                  "user=<bob>, method=PLAIN, rip=::ffff:1.2.3.4, lip=::ffff:1.2.3.5", ctx)
    assert fields(event, "event.outcome", "source.ip", "destination.ip") == ("failure", "1.2.3.4", "1.2.3.5")


def test_dovecot_no_auth_attempt_is_not_a_failure(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, "
                  "rip=185.220.101.5, lip=10.0.0.2, session=<x>", ctx)
    assert fields(event, "event.category", "event.outcome", "source.ip") == (
        ["network"], None, "185.220.101.5")


def test_dovecot_mail_process_logout(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} dovecot: imap(alice)<1234><abc>: Disconnected: Logged out in=100 out=2000", ctx)
    assert fields(event, "event.category", "event.type", "user.name", "network.protocol") == (
        ["session"], ["end"], "alice", "imap")


# --- Zimbra ----------------------------------------------------------------------------------

def test_saslauthd_auth_failure(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} saslauthd[321]: auth failure: [user=admin] [service=smtp] [realm=tinh.gov.vn] "
                  "[mech=pam] [reason=PAM auth error]", ctx)
    assert fields(event, "event.category", "event.outcome", "user.name", "event.reason") == (
        ["authentication"], "failure", "admin", "PAM auth error")
    assert event["saslauthd"] == {"service": "smtp", "realm": "tinh.gov.vn", "mech": "pam",
                                  "reason": "PAM auth error"}


def test_saslauthd_zimbra_auth_failed(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} saslauthd[321]: auth_zimbra: admin@tinh.gov.vn auth failed: authentication "
                  "failed for [admin@tinh.gov.vn], invalid password", ctx)
    assert fields(event, "event.outcome", "user.name") == ("failure", "admin@tinh.gov.vn")


def test_amavis_passed_clean(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} amavis[4444]: (04444-01) Passed CLEAN {{RelayedInbound}}, [198.51.100.7]:40000 "
                  "[198.51.100.7] <news@example.org> -> <alice@tinh.gov.vn>, Queue-ID: 4F1A2B3C4D, "
                  "Message-ID: <abc@example.org>, mail_id: xyz, Hits: -1.2, size: 4567, "
                  "queued_as: 5A6B7C8D9E, 345 ms", ctx)
    assert fields(event, "event.category", "event.type", "event.action", "event.outcome") == (
        ["email"], ["allowed"], "passed", "success")
    assert fields(event, "source.ip", "email.from.address", "email.to.address", "email.local_id",
                  "email.message_id") == (
        "198.51.100.7", "news@example.org", ["alice@tinh.gov.vn"], "4F1A2B3C4D", "abc@example.org")
    assert fields(event, "amavis.verdict", "amavis.hits", "amavis.size", "amavis.flags") == (
        "CLEAN", -1.2, 4567, ["RelayedInbound"])


def test_amavis_blocked_spam_to_several_recipients(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} amavis[4444]: (04444-02) Blocked SPAM {{DiscardedInbound,Quarantined}}, "
                  "[203.0.113.9]:5000 [203.0.113.9] <spam@evil.example> -> <bob@tinh.gov.vn>,"
                  "<carol@tinh.gov.vn>, quarantine: spam-abc.gz, Queue-ID: 1A2B3C4D5E, Message-ID: <s@evil>, "
                  "mail_id: abc, Hits: 15.3, size: 999, 120 ms", ctx)
    assert fields(event, "event.type", "event.action", "event.outcome", "amavis.hits") == (
        ["denied"], "blocked", "failure", 15.3)
    assert get_field(event, "email.to.address") == ["bob@tinh.gov.vn", "carol@tinh.gov.vn"]


def test_amavis_blocked_infected_is_also_malware(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} amavis[4444]: (04444-03) Blocked INFECTED (Eicar-Test-Signature) "
                  "{DiscardedInbound,Quarantined}, [203.0.113.9]:5001 [203.0.113.9] <v@evil.example> -> "
                  "<bob@tinh.gov.vn>, Queue-ID: 2A2B3C4D5E, Hits: -, size: 999, 80 ms", ctx)
    assert fields(event, "event.category", "amavis.detail", "event.reason") == (
        ["email", "malware"], "Eicar-Test-Signature", "INFECTED (Eicar-Test-Signature)")


def test_zimbramon_service_status_change(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} zimbramon[1111]: 1111:err: Service status change: mail.tinh.gov.vn mailbox "
                  "changed from RUNNING to STOPPED", ctx)
    assert fields(event, "event.action", "log.level", "zimbra.service", "zimbra.status") == (
        "service_status_change", "err", "mailbox", "STOPPED")


def test_zimbra_audit_authentication_failure(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} zimbra-audit: 2024-11-20 10:00:15,123 WARN  [qtp1234-56:https://10.0.0.2:443/"
                  "service/soap/AuthRequest] [name=admin@tinh.gov.vn;oip=185.220.101.5;ua=zclient/8.8.15_GA;] "
                  "security - cmd=Auth; account=admin@tinh.gov.vn; protocol=soap; error=authentication failed "
                  "for [admin@tinh.gov.vn], invalid password;", ctx)
    assert fields(event, "event.category", "event.outcome", "user.name", "source.ip") == (
        ["authentication"], "failure", "admin@tinh.gov.vn", "185.220.101.5")
    assert fields(event, "@timestamp", "user_agent.original", "network.protocol", "log.level") == (
        "2024-11-20T03:00:15.123Z", "zclient/8.8.15_GA", "soap", "warn")


def test_zimbra_audit_successful_login_uses_the_originating_ip(ctx: ParseContext) -> None:
    event = parse(f"{HEADER} zimbra-audit: 2024-11-20 10:00:16,456 INFO  [ImapServer-12] [ip=10.0.0.9;"
                  "oip=113.160.1.2;ua=Mozilla/5.0 (Windows NT 10.0; Win64; x64);] security - cmd=Auth; "
                  "account=alice@tinh.gov.vn; protocol=imap;", ctx)
    assert fields(event, "event.outcome", "user.name", "source.ip", "user_agent.original") == (
        "success", "alice@tinh.gov.vn", "113.160.1.2", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")


# --- named ---------------------------------------------------------------------------------

def test_wazuh_named_query_cache_denied(ctx: ParseContext) -> None:
    event = parse(first(wazuh_logs("named"), "217.148.39.3#1036: query (cache) denied"), ctx)
    assert fields(event, "event.type", "event.action", "event.outcome", "source.ip", "source.port") == (
        ["denied"], "query_denied", "failure", "217.148.39.3", 1036)
    assert get_field(event, "event.dataset") == "named.log"


def test_named_query_log(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:22 ns1 named[464]: client @0x7f1234567890 10.1.2.3#53211 (www.example.com): "
                  "query: www.example.com IN A +E(0)K (10.0.0.53)", ctx)
    assert fields(event, "event.action", "dns.question.name", "dns.question.type", "source.ip",
                  "destination.ip") == ("dns_query", "www.example.com", "A", "10.1.2.3", "10.0.0.53")


def test_named_zone_transfer_denied(ctx: ParseContext) -> None:
    event = parse("Nov 20 10:00:22 ns1 named[464]: client @0x7f12 203.0.113.9#4444 (tinh.gov.vn): "
                  "zone transfer 'tinh.gov.vn/AXFR/IN' denied", ctx)
    assert fields(event, "event.action", "dns.question.name", "dns.question.type") == (
        "zone_transfer_denied", "tinh.gov.vn", "AXFR")
