//! What the in-process benches start from: a server on a fresh data directory, staff in
//! the roles asked for (signed in), and two members in a direct conversation.

use anyhow::Context;
use custodia_client::staffing;
use custodia_sdk::Client;
use custodia_server::{RawConfig, Running};

/// The password of every bench account.
const PASSWORD: &str = "bench password 12345";

/// A running bench deployment.
pub struct World {
    /// The server.
    pub running: Running,
    /// Staff, in the order asked for, signed in.
    pub staff: Vec<Client>,
    /// `bench-alice` and `bench-bob`, signed in.
    pub users: Vec<Client>,
    /// Their direct conversation.
    pub chat: uuid::Uuid,
    /// The data directory, deleted when dropped: a destructuring must keep it bound
    /// (`_dir`), or it is gone while the server runs.
    pub _dir: tempfile::TempDir,
}

/// Starts `config` (its listeners, data directory and the staff waiting period are set
/// here) with `staff` as (username, role).
pub async fn start(config: RawConfig, staff: &[(&str, &str)]) -> anyhow::Result<World> {
    let dir = tempfile::tempdir().context("a temporary data directory")?;
    let config = RawConfig {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        audit_listen: Some("127.0.0.1:0".into()),
        staff_listen: Some("127.0.0.1:0".into()),
        // The bench's approvers decide as soon as they exist.
        staff_decide_after_hours: Some(0),
        ..config
    }
    .validate()?;
    let mut running = custodia_server::start(config).await?;
    let ca = std::fs::read(&running.ca_cert)?;
    let api = Client::new(&running.staff_url, &ca)?;
    let mut founders = Vec::new();
    for f in std::mem::take(&mut running.founders) {
        let creds =
            staffing::enrol(&api, f.staff.username.as_str(), &f.enrolment_code, PASSWORD).await?;
        founders.push(staffing::sign_in(&api, &creds).await?);
    }
    let [admin, auditor] = founders.as_slice() else {
        anyhow::bail!("a fresh data directory has two founders");
    };
    let mut signed_in = Vec::new();
    for (name, role) in staff {
        let creds = staffing::add_staff(admin, auditor, name, role, PASSWORD).await?;
        signed_in.push(staffing::sign_in(&api, &creds).await?);
    }
    let mut users = Vec::new();
    for name in ["bench-alice", "bench-bob"] {
        let mut c = Client::new(&running.url, &ca)?;
        c.register(name, PASSWORD, "1990-01-01").await?;
        c.login(name, PASSWORD, "bench").await?;
        users.push(c);
    }
    let chat = users[0].open_direct("bench-bob").await?.id;
    Ok(World {
        running,
        staff: signed_in,
        users,
        chat,
        _dir: dir,
    })
}
