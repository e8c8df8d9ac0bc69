//! The memory budget: what streams waiting to be accepted may hold.

use super::*;

fn budget_limits(budget: usize) -> Limits {
    Limits {
        backlog: 1024,
        budget,
        ..limits()
    }
}

#[test]
fn the_budget_refuses_the_newest_unaccepted_streams() {
    let budget = 2 * 1024 * 1024;
    let mut s: Core<()> = Core::new(Direction::Down, budget_limits(budget));
    let chunk = vec![5u8; 65_536];
    // The peer opens 10 streams and fills each window; the application accepts none.
    for id in 1..=10u16 {
        frame(&mut s, Cmd::Syn, id, 0).unwrap();
        for _ in 0..8 {
            psh(&mut s, id, &chunk).unwrap();
        }
        assert!(s.unclaimed_bytes() <= budget, "{}", s.unclaimed_bytes());
    }
    // The oldest stay; the newest past the budget were refused with FIN, their data dropped.
    let out = output(&mut s);
    let refused: Vec<u16> = out
        .iter()
        .filter(|(h, _)| h.cmd == Cmd::Fin)
        .map(|(h, _)| h.sid)
        .collect();
    assert!(refused.len() >= 6, "{refused:?}");
    let mut kept = Vec::new();
    while let Some(k) = s.accept() {
        kept.push(s.id(k).unwrap());
        let mut buf = vec![0u8; 512 * 1024];
        let mut got = 0;
        while let Read::Data(n) = s.read(k, &mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, 512 * 1024, "an accepted stream keeps all its data");
    }
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|id| !refused.contains(id)));
    assert_eq!(s.unclaimed_bytes(), 0);
}

#[test]
fn an_accepted_stream_is_outside_the_budget() {
    let mut s: Core<()> = Core::new(Direction::Down, budget_limits(64 * 1024));
    frame(&mut s, Cmd::Syn, 1, 0).unwrap();
    let k = s.accept().unwrap();
    let chunk = vec![5u8; 65_536];
    for _ in 0..8 {
        psh(&mut s, 1, &chunk).unwrap();
    }
    assert_eq!(s.stream(k).unwrap().recv.len(), 512 * 1024);
    assert_eq!(s.unclaimed_bytes(), 0);
    assert!(output(&mut s).is_empty(), "nothing refused");
}
