"""Peer scoring rules, on a fake clock."""

from p2p.identity import NodeIdentity
from p2p.scoring import Offense, PeerScorer, ScoreParams


def test_penalties_accumulate_to_a_ban_that_expires():
    now = [0.0]
    scorer = PeerScorer(ScoreParams(disconnect_below=-100, ban_seconds=60), clock=lambda: now[0])
    peer = NodeIdentity.generate().peer_id
    for _ in range(4):
        assert not scorer.penalize(peer, Offense.MALFORMED)  # -25 each: -100 is not below
    assert scorer.penalize(peer, Offense.INVALID)
    assert scorer.is_banned(peer) and 59 < scorer.banned_for(peer) <= 60
    now[0] = 61
    assert not scorer.is_banned(peer) and scorer.score(peer) == 0


def test_score_recovers_over_time():
    now = [0.0]
    scorer = PeerScorer(ScoreParams(recovery_per_second=2), clock=lambda: now[0])
    peer = NodeIdentity.generate().peer_id
    scorer.penalize(peer, Offense.OVERSIZED)
    assert scorer.score(peer) == -50
    now[0] = 10
    assert scorer.score(peer) == -30
    now[0] = 100
    assert scorer.score(peer) == 0
    assert scorer.offenses(peer) == {"OVERSIZED": 1}
