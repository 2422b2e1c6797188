//! The behaviour every [`StateStore`] backend must show, run by each backend's own tests
//! against a fresh store of that backend.

use std::time::Duration;

use super::*;

fn key(id: &str, hash: &str) -> StoredKey {
    StoredKey {
        id: id.into(),
        name: format!("name-{id}"),
        description: String::new(),
        plan: Some("basic".into()),
        enabled: true,
        created: 1_700_000_000,
        hash: hash.into(),
    }
}

fn access_key(id: &str) -> StoredAccessKey {
    StoredAccessKey {
        id: id.into(),
        secret: format!("secret-of-{id}"),
        name: "ci".into(),
        enabled: true,
        created: 1_700_000_000,
    }
}

fn deployment(id: &str, api: &str, created: u64) -> Deployment {
    Deployment {
        id: id.into(),
        api: api.into(),
        description: format!("deployment {id}"),
        author: Some("ops".into()),
        created,
        hash: String::new(),
        definition: serde_json::json!({ "name": api, "routes": { "GET /": { "mock": {} } } }),
    }
}

fn pointer(api: &str, stage: &str, deployment: &str) -> StagePointer {
    StagePointer {
        api: api.into(),
        stage: stage.into(),
        deployment: deployment.into(),
        canary: None,
        settings: None,
    }
}

fn inc(key_id: &str, day: u32, requests: u64) -> UsageIncrement {
    UsageIncrement {
        key_id: key_id.into(),
        day,
        requests,
    }
}

/// The next change a watcher sees, within a second.
async fn next_change(watch: &mut Watch) -> Change {
    tokio::time::timeout(Duration::from_secs(1), watch.next())
        .await
        .expect("a change within a second")
        .expect("the store is open")
}

/// Runs every check against `store`, which must be empty.
pub async fn run(store: &dyn StateStore) {
    keys(store).await;
    access_keys(store).await;
    usage(store).await;
    deployments_and_stages(store).await;
    plans(store).await;
}

fn plan(name: &str) -> StoredPlan {
    StoredPlan {
        name: name.into(),
        definition: serde_json::json!({ "name": name, "apis": ["shop/prod"], "quota": { "limit": 5, "period": "day" } }),
        created: 7,
    }
}

/// Usage plans: written once by name, listed by name, deleted, each change watched.
async fn plans(store: &dyn StateStore) {
    let mut watch = store.watch();
    store.put_plan(plan("gold")).await.unwrap();
    store.put_plan(plan("basic")).await.unwrap();
    let e = store.put_plan(plan("gold")).await.unwrap_err();
    assert!(matches!(e, StateError::Conflict(_)), "{e}");
    assert_eq!(store.plans().await.unwrap(), [plan("basic"), plan("gold")]);
    assert!(store.delete_plan("gold").await.unwrap());
    assert!(!store.delete_plan("gold").await.unwrap());
    assert_eq!(store.plans().await.unwrap(), [plan("basic")]);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_change(&mut watch).await);
    }
    let named = |name: &str| Change::Plan { name: name.into() };
    assert_eq!(seen, [named("gold"), named("basic"), named("gold")]);
    assert!(store.delete_plan("basic").await.unwrap());
}

async fn keys(store: &dyn StateStore) {
    store
        .put_keys(vec![key("a", "h1"), key("b", "h2")])
        .await
        .unwrap();
    let mut changed = key("a", "h1");
    changed.enabled = false;
    store.put_keys(vec![changed.clone()]).await.unwrap();
    assert!(store.delete_key("b").await.unwrap());
    assert!(!store.delete_key("b").await.unwrap(), "deleted once");
    assert_eq!(store.keys().await.unwrap(), [changed]);
}

async fn access_keys(store: &dyn StateStore) {
    let first = access_key("AKIAFIRST00000000000");
    let second = access_key("AKIASECOND0000000000");
    store
        .put_access_keys(vec![first.clone(), second])
        .await
        .unwrap();
    assert!(
        store
            .delete_access_key("AKIASECOND0000000000")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_access_key("AKIASECOND0000000000")
            .await
            .unwrap()
    );
    assert_eq!(store.access_keys().await.unwrap(), [first]);
}

async fn usage(store: &dyn StateStore) {
    store
        .add_usage(vec![inc("a", 100, 3), inc("a", 101, 1)])
        .await
        .unwrap();
    store.add_usage(vec![inc("a", 100, 2)]).await.unwrap();
    // A key whose id starts with another's is counted apart.
    store.add_usage(vec![inc("ab", 100, 9)]).await.unwrap();
    store.add_usage(Vec::new()).await.unwrap();
    assert_eq!(
        store.usage("a", 0..=200).await.unwrap(),
        [(100, 5), (101, 1)]
    );
    assert_eq!(store.usage("a", 101..=101).await.unwrap(), [(101, 1)]);
    assert_eq!(store.usage("ab", 0..=200).await.unwrap(), [(100, 9)]);
    assert_eq!(store.usage("nobody", 0..=200).await.unwrap(), []);
}

async fn deployments_and_stages(store: &dyn StateStore) {
    let mut watch = store.watch();
    let first = deployment("d1", "shop", 10);
    store.put_deployment(first.clone()).await.unwrap();
    assert_eq!(
        next_change(&mut watch).await,
        Change::Deployment {
            id: "d1".into(),
            api: "shop".into()
        }
    );
    // A deployment is written once.
    let mut again = deployment("d1", "shop", 11);
    again.description = "rewritten".into();
    let refused = store.put_deployment(again).await.unwrap_err();
    assert!(matches!(refused, StateError::Conflict(_)), "{refused}");
    assert_eq!(store.deployment("d1").await.unwrap(), Some(first.clone()));

    let second = deployment("d2", "shop", 20);
    let other_api = deployment("d3", "billing", 15);
    store.put_deployment(second.clone()).await.unwrap();
    store.put_deployment(other_api.clone()).await.unwrap();
    assert_eq!(
        store.deployments("shop").await.unwrap(),
        [first, second],
        "an API's deployments, oldest first"
    );
    assert_eq!(store.deployment("d9").await.unwrap(), None);

    store
        .point_stage(pointer("shop", "prod", "d1"))
        .await
        .unwrap();
    store
        .point_stage(pointer("shop", "beta", "d2"))
        .await
        .unwrap();
    store
        .point_stage(pointer("shop", "prod", "d2"))
        .await
        .unwrap();
    store
        .point_stage(pointer("billing", "prod", "d3"))
        .await
        .unwrap();
    for refused in [pointer("shop", "prod", "d9"), pointer("shop", "prod", "d3")] {
        let e = store.point_stage(refused.clone()).await.unwrap_err();
        assert!(matches!(e, StateError::Conflict(_)), "{refused:?}: {e}");
    }
    assert_eq!(
        store.stages("shop").await.unwrap(),
        [pointer("shop", "beta", "d2"), pointer("shop", "prod", "d2")]
    );
    assert_eq!(
        store.stages("billing").await.unwrap(),
        [pointer("billing", "prod", "d3")]
    );

    // A canary points at a second deployment of the same API, in the same record.
    let mut with_canary = pointer("shop", "beta", "d2");
    with_canary.canary = Some(Canary {
        deployment: "d1".into(),
        percent: 12.5,
        variables: [("color".to_owned(), "blue".to_owned())].into(),
        use_stage_cache: false,
        pin_header: Some("x-canary".into()),
    });
    // The stage's settings overrides are kept in the same record, as written.
    with_canary.settings = Some(serde_json::json!({
        "variables": { "color": "green", "old": null },
        "throttle": { "rate": 5.0, "burst": 10 }
    }));
    let mut foreign_canary = with_canary.clone();
    if let Some(c) = foreign_canary.canary.as_mut() {
        c.deployment = "d3".into();
    }
    let e = store.point_stage(foreign_canary).await.unwrap_err();
    assert!(matches!(e, StateError::Conflict(_)), "{e}");
    store.point_stage(with_canary.clone()).await.unwrap();
    assert_eq!(
        store.stages("shop").await.unwrap(),
        [with_canary.clone(), pointer("shop", "prod", "d2")]
    );

    // A deployment a stage or a canary serves cannot be deleted; another can.
    for in_use in ["d1", "d2"] {
        let e = store.delete_deployment(in_use).await.unwrap_err();
        assert_eq!(e.to_string(), DEPLOYMENT_IN_USE, "{in_use}");
    }
    let unused = deployment("d4", "shop", 30);
    store.put_deployment(unused).await.unwrap();
    assert!(store.delete_deployment("d4").await.unwrap());
    assert!(!store.delete_deployment("d4").await.unwrap());
    assert_eq!(store.deployment("d4").await.unwrap(), None);

    // The watcher saw every change that happened, in order, and none that was refused.
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(next_change(&mut watch).await);
    }
    assert_eq!(
        seen,
        [
            Change::Deployment {
                id: "d2".into(),
                api: "shop".into()
            },
            Change::Deployment {
                id: "d3".into(),
                api: "billing".into()
            },
            Change::Stage(pointer("shop", "prod", "d1")),
            Change::Stage(pointer("shop", "beta", "d2")),
            Change::Stage(pointer("shop", "prod", "d2")),
            Change::Stage(pointer("billing", "prod", "d3")),
            Change::Stage(with_canary),
            Change::Deployment {
                id: "d4".into(),
                api: "shop".into()
            },
            Change::Deleted {
                id: "d4".into(),
                api: "shop".into()
            },
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.next())
            .await
            .is_err(),
        "no change after the last"
    );

    // Deployments made within one second list in the order they were made, whatever their
    // ids.
    for id in ["d9", "d5"] {
        store
            .put_deployment(deployment(id, "orders", 50))
            .await
            .unwrap();
    }
    let ids: Vec<String> = store
        .deployments("orders")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d9", "d5"]);
}

/// Writes one of each record, for [`read_some`] to find (after the backend is reopened).
pub async fn write_some(store: &dyn StateStore) {
    store.put_keys(vec![key("a", "h1")]).await.unwrap();
    store
        .put_access_keys(vec![access_key("AKIAFIRST00000000000")])
        .await
        .unwrap();
    store.add_usage(vec![inc("a", 100, 3)]).await.unwrap();
    store
        .put_deployment(deployment("d1", "shop", 10))
        .await
        .unwrap();
    store
        .point_stage(pointer("shop", "prod", "d1"))
        .await
        .unwrap();
    store.put_plan(plan("gold")).await.unwrap();
}

/// Finds what [`write_some`] wrote.
pub async fn read_some(store: &dyn StateStore) {
    assert_eq!(store.keys().await.unwrap(), [key("a", "h1")]);
    assert_eq!(
        store.access_keys().await.unwrap(),
        [access_key("AKIAFIRST00000000000")]
    );
    assert_eq!(store.usage("a", 0..=200).await.unwrap(), [(100, 3)]);
    assert_eq!(
        store.deployments("shop").await.unwrap(),
        [deployment("d1", "shop", 10)]
    );
    assert_eq!(
        store.stages("shop").await.unwrap(),
        [pointer("shop", "prod", "d1")]
    );
    assert_eq!(store.plans().await.unwrap(), [plan("gold")]);
}
