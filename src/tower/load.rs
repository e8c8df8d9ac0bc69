//! `tower::load::Load` (feature `tower-load`): a session's load, as tower's balancers read it.

use tower::load::Load;

use super::Opener;
use crate::session::Session;

impl Load for Session {
    /// [`Session::load`]: streams in use, plus one per 64 KiB of frames waiting for the transport.
    type Metric = usize;

    fn load(&self) -> usize {
        Session::load(self)
    }
}

impl Load for Opener {
    /// The load of the opener's session ([`Session::load`]).
    type Metric = usize;

    fn load(&self) -> usize {
        self.session().load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_counts_the_streams_in_use() {
        smol::block_on(async {
            let (a, b) = crate::pipe();
            let (client, driver) = Session::client(a, crate::Config::default());
            let (_server, server_driver) = Session::server(b, crate::Config::default());
            let ex = smol::Executor::new();
            ex.spawn(driver).detach();
            ex.spawn(server_driver).detach();
            ex.run(async {
                let opener = client.opener();
                assert_eq!(Load::load(&opener), 0);
                let s = client.open().await.expect("open");
                assert_eq!(Load::load(&client), 1);
                assert_eq!(Load::load(&opener), 1);
                drop(s);
            })
            .await;
        });
    }
}
