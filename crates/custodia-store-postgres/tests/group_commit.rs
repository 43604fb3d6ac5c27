//! Group commit on PostgreSQL: concurrent writes share commits, and every write is
//! answered only once its commit returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use custodia_core::{
    BirthDate, ClientMsgId, ConversationId, ConversationKind, Epoch, MemberRole, MessageId,
    Timestamp, UserId, Username,
};
use custodia_store::{
    CommitObserver, Franking, NewConversation, NewMessage, SealedBody, Storage, UserRecord,
};
use custodia_store_postgres::scratch::ScratchDatabase;
use custodia_store_postgres::{PgOptions, PgStore};

#[derive(Default)]
struct Counting {
    commits: AtomicUsize,
    operations: AtomicUsize,
}

impl CommitObserver for Counting {
    fn committed(&self, operations: usize, _: Duration) {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.operations.fetch_add(operations, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let db = ScratchDatabase::create().await.unwrap();
    let counting = Arc::new(Counting::default());
    let options = PgOptions {
        url: db.url().to_owned(),
        max_connections: 8,
    };
    let s = Storage::from_backend(PgStore::connect(&options, counting.clone()).await.unwrap());
    let now = Timestamp::from_millis(1_795_435_200_000);
    let user = UserRecord {
        id: UserId::new(),
        username: Username::parse("writer").unwrap(),
        password_hash: "$argon2id$test".into(),
        birth_date: BirthDate::parse("1990-01-01", time::macros::date!(2026 - 01 - 01)).unwrap(),
        created_at: now,
        closed_at: None,
    };
    let sender = user.id;
    s.accounts.create_user(user).await.unwrap();
    let conv = ConversationId::new();
    s.conversations
        .create_conversation(NewConversation {
            id: conv,
            kind: ConversationKind::Group,
            title: None,
            created_by: sender,
            created_at: now,
            members: vec![(sender, MemberRole::Owner)],
        })
        .await
        .unwrap();
    let before = counting.commits.load(Ordering::SeqCst);
    let before_ops = counting.operations.load(Ordering::SeqCst);

    let appends: Vec<_> = (0..300)
        .map(|k| {
            let s = s.clone();
            tokio::spawn(async move {
                s.messages
                    .append(NewMessage {
                        id: MessageId::new(),
                        conversation_id: conv,
                        sender_id: sender,
                        client_id: ClientMsgId::parse(&format!("c{k}")).unwrap(),
                        sent_at: now,
                        epoch: Epoch::from_label("2026-11".into()),
                        sealed: SealedBody(vec![1; 64]),
                        franking: Franking {
                            commitment: [2; 32],
                            tag: vec![3; 32],
                        },
                        signal: None,
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for a in appends {
        a.await.unwrap();
    }
    let commits = counting.commits.load(Ordering::SeqCst) - before;
    let operations = counting.operations.load(Ordering::SeqCst) - before_ops;
    assert_eq!(operations, 300, "every append was committed");
    assert!(
        commits < 300,
        "300 concurrent appends took {commits} commits: none were shared"
    );
}
