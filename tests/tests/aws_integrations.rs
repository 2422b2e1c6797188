//! `aws` integrations with the real binary against a real AWS API emulator: moto in server
//! mode on a loopback port, with its signature checks on (tests/tools/moto_setup.py turns
//! them on after making the test's IAM user), so every call below passes only because
//! Edgeway signed it with SigV4 as AWS checks it, and the wrong-secret test shows a bad
//! signature is refused. Each service speaks its own protocol: SQS the query protocol (a
//! form), Step Functions, DynamoDB and Kinesis the JSON ones (`X-Amz-Target`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use edgeway_tests::*;
use serde_json::{Value, json};

/// A gateway whose `aws` integrations call `moto` with the key moto_setup.py made, held in
/// environment variables as an operator would hold it.
async fn gateway(moto: &Moto, routes: &str) -> Gateway {
    let yaml = format!(
        r#"
listen:
  - addr: 127.0.0.1:0
apis:
  - name: shop
    stages:
      prod: {{}}
    routes:
{routes}
"#
    );
    Gateway::builder()
        .env("SHOP_AWS_KEY", &moto.access_key)
        .env("SHOP_AWS_SECRET", &moto.secret_key)
        .env("WRONG_AWS_SECRET", "not-the-secret")
        .start(&yaml)
        .await
}

/// The `aws:` fields every route here shares (the region, the emulator's endpoint and the
/// keys), as lines indented to sit among a route's other `aws:` fields.
fn aws_common(moto: &Moto) -> String {
    format!(
        "region: us-east-1\n            endpoint: \"{}\"\n            credentials: {{ access_key_env: SHOP_AWS_KEY, secret_key_env: SHOP_AWS_SECRET }}",
        moto.endpoint
    )
}

/// The bodies of the messages an SQS `ReceiveMessage` answer (moto answers the query
/// protocol in XML) holds.
fn message_bodies(xml: &str) -> Vec<String> {
    xml.split("<Body>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Body>").map(|(body, _)| body.to_owned()))
        .collect()
}

#[tokio::test]
async fn an_order_is_queued_in_sqs_with_the_mapped_body_and_received_back() {
    let moto = Moto::start().await;
    let common = aws_common(&moto);
    let routes = format!(
        r#"
      - route: POST /orders
        integration:
          aws:
            service: sqs
            path: "{account}/orders"
            {common_fields}
            request_templates:
              application/json: "Action=SendMessage&MessageBody=$util.urlEncode(\"order $input.path('$.id') for $input.path('$.customer')\")"
            responses:
              - {{ default: true, status: 202, response_templates: {{ application/json: '{{"queued": true}}' }} }}
              - {{ selection_pattern: "4\\d\\d", status: 502, response_templates: {{ application/json: '{{"message": "the queue refused the order"}}' }} }}
      - route: GET /orders
        integration:
          aws:
            service: sqs
            action: ReceiveMessage
            {common_fields}
            request_parameters:
              integration.request.querystring.QueueUrl: "'{queue_url}'"
              integration.request.querystring.MaxNumberOfMessages: "'10'"
"#,
        account = moto.account,
        common_fields = common,
        queue_url = moto.queue_url,
    );
    let gw = gateway(&moto, &routes).await;
    let c = client();

    let r = c
        .post(gw.url("/prod/orders"))
        .header("content-type", "application/json")
        .body(json!({"id": 42, "customer": "ada"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", moto.log_text());
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(json_body(r).await, json!({"queued": true}));

    let r = c.get(gw.url("/prod/orders")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert_eq!(message_bodies(&xml), ["order 42 for ada"], "{xml}");
}

#[tokio::test]
async fn a_request_signed_with_the_wrong_secret_is_refused_by_the_service() {
    let moto = Moto::start().await;
    let routes = format!(
        r#"
      - route: POST /orders
        integration:
          aws:
            service: sqs
            path: "{account}/orders"
            region: us-east-1
            endpoint: "{endpoint}"
            credentials: {{ access_key_env: SHOP_AWS_KEY, secret_key_env: WRONG_AWS_SECRET }}
            request_templates:
              application/json: "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
      - route: GET /items/{{id}}
        integration:
          aws:
            service: dynamodb
            action: GetItem
            region: us-east-1
            endpoint: "{endpoint}"
            credentials: {{ access_key_env: SHOP_AWS_KEY, secret_key_env: WRONG_AWS_SECRET }}
            request_templates:
              application/json: '{{"TableName": "items", "Key": {{"id": {{"S": "$input.params(''id'')"}}}}}}'
      - route: GET /orders
        integration:
          aws:
            service: sqs
            action: ReceiveMessage
            {common_fields}
            request_parameters:
              integration.request.querystring.QueueUrl: "'{queue_url}'"
"#,
        account = moto.account,
        endpoint = moto.endpoint,
        common_fields = aws_common(&moto),
        queue_url = moto.queue_url,
    );
    let gw = gateway(&moto, &routes).await;
    let c = client();
    let r = c
        .post(gw.url("/prod/orders"))
        .header("content-type", "application/json")
        .body(json!({"id": 1}).to_string())
        .send()
        .await
        .unwrap();
    // No integration responses: the service's answer passes through as it is.
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");

    // A JSON service checks the same way (DynamoDB answers 400 InvalidSignatureException,
    // moto 403).
    let r = c.get(gw.url("/prod/items/1")).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 403), "{}", r.status());
    let text = r.text().await.unwrap();
    assert!(text.to_lowercase().contains("signature"), "{text}");

    // Nothing was queued; the right key still reads the (empty) queue.
    let r = c.get(gw.url("/prod/orders")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(message_bodies(&xml).is_empty(), "{xml}");
}

#[tokio::test]
async fn a_step_functions_execution_starts_and_its_arn_is_mapped_to_the_client() {
    let moto = Moto::start().await;
    let routes = format!(
        r#"
      - route: POST /orders/{{id}}/fulfil
        integration:
          aws:
            service: states
            action: StartExecution
            {common_fields}
            request_templates:
              application/json: |
                {{"stateMachineArn": "{state_machine}", "name": "order-$input.params('id')", "input": "$util.escapeJavaScript($input.json('$'))"}}
            responses:
              - default: true
                response_templates:
                  application/json: '{{"execution": "$input.path(''$.executionArn'')", "started": $input.path(''$.startDate'')}}'
"#,
        common_fields = aws_common(&moto),
        state_machine = moto.state_machine,
    );
    let gw = gateway(&moto, &routes).await;
    let r = client()
        .post(gw.url("/prod/orders/7/fulfil"))
        .header("content-type", "application/json")
        .body(json!({"items": ["tea"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", moto.log_text());
    let body = json_body(r).await;
    assert_eq!(
        body["execution"],
        format!(
            "arn:aws:states:us-east-1:{}:execution:fulfil:order-7",
            moto.account
        ),
        "{body}"
    );
    assert!(body["started"].is_number(), "{body}");
}

#[tokio::test]
async fn a_dynamodb_item_is_put_through_one_route_and_read_as_clean_json_through_another() {
    let moto = Moto::start().await;
    let routes = format!(
        r#"
      - route: PUT /items/{{id}}
        integration:
          aws:
            service: dynamodb
            action: PutItem
            {common_fields}
            request_templates:
              application/json: |
                {{"TableName": "items", "Item": {{"id": {{"S": "$input.params('id')"}}, "name": {{"S": "$util.escapeJavaScript($input.path('$.name'))"}}, "price": {{"N": "$input.path('$.price')"}}}}}}
            responses:
              - {{ default: true, status: 201, response_templates: {{ application/json: '{{"stored": "$input.params(''id'')"}}' }} }}
              - {{ selection_pattern: "4\\d\\d", status: 400, response_templates: {{ application/json: '{{"message": "$input.path(''$.message'')"}}' }} }}
      - route: GET /items/{{id}}
        integration:
          aws:
            service: dynamodb
            action: GetItem
            {common_fields}
            request_templates:
              application/json: '{{"TableName": "items", "Key": {{"id": {{"S": "$input.params(''id'')"}}}}}}'
            responses:
              - default: true
                response_templates:
                  application/json: |
                    #set($item = $input.path('$.Item'))
                    #if("$!item" == "")
                    #set($context.responseOverride.status = 404)
                    {{"message": "no item $input.params('id')"}}
                    #else
                    {{"id": "$item.id.S", "name": "$util.escapeJavaScript($item.name.S)", "price": $item.price.N}}
                    #end
"#,
        common_fields = aws_common(&moto),
    );
    let gw = gateway(&moto, &routes).await;
    let c = client();
    let r = c
        .put(gw.url("/prod/items/tea-1"))
        .header("content-type", "application/json")
        .body(json!({"name": "Green \"sencha\"", "price": 4.5}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", moto.log_text());
    assert_eq!(json_body(r).await, json!({"stored": "tea-1"}));

    let r = c.get(gw.url("/prod/items/tea-1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(r).await,
        json!({"id": "tea-1", "name": "Green \"sencha\"", "price": 4.5})
    );

    let r = c.get(gw.url("/prod/items/none")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_body(r).await, json!({"message": "no item none"}));

    // DynamoDB's own refusal (a number that is not one) is mapped to a 400 with its message.
    let r = c
        .put(gw.url("/prod/items/bad"))
        .header("content-type", "application/json")
        .body(json!({"name": "x", "price": "cheap"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = json_body(r).await;
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn a_kinesis_record_is_put_and_read_back_from_its_shard() {
    let moto = Moto::start().await;
    let routes = format!(
        r#"
      - route: POST /clicks
        integration:
          aws:
            service: kinesis
            action: PutRecord
            {common_fields}
            request_templates:
              application/json: '{{"StreamName": "clicks", "PartitionKey": "$input.path(''$.user'')", "Data": "$util.base64Encode($input.json(''$''))"}}'
            responses:
              - default: true
                response_templates:
                  application/json: '{{"shard": "$input.path(''$.ShardId'')", "sequence": "$input.path(''$.SequenceNumber'')"}}'
      - route: POST /clicks/iterator
        integration:
          aws:
            service: kinesis
            action: GetShardIterator
            {common_fields}
            request_templates:
              application/json: '{{"StreamName": "clicks", "ShardId": "$input.path(''$.shard'')", "ShardIteratorType": "TRIM_HORIZON"}}'
      - route: POST /clicks/read
        integration:
          aws:
            service: kinesis
            action: GetRecords
            {common_fields}
            request_templates:
              application/json: '{{"ShardIterator": "$util.escapeJavaScript($input.path(''$.ShardIterator''))"}}'
            responses:
              - default: true
                response_templates:
                  application/json: '[#foreach($r in $input.path(''$.Records''))$util.base64Decode($r.Data)#if($foreach.hasNext),#end#end]'
"#,
        common_fields = aws_common(&moto),
    );
    let gw = gateway(&moto, &routes).await;
    let c = client();
    let click = json!({"user": "ada", "page": "/tea"});
    let r = c
        .post(gw.url("/prod/clicks"))
        .header("content-type", "application/json")
        .body(click.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", moto.log_text());
    let put = json_body(r).await;
    assert!(
        put["shard"].as_str().unwrap().starts_with("shardId-"),
        "{put}"
    );
    assert!(!put["sequence"].as_str().unwrap().is_empty(), "{put}");

    let r = c
        .post(gw.url("/prod/clicks/iterator"))
        .header("content-type", "application/json")
        .body(json!({"shard": put["shard"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let iterator: Value = json_body(r).await;
    let r = c
        .post(gw.url("/prod/clicks/read"))
        .header("content-type", "application/json")
        .body(iterator.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_body(r).await, json!([click]));
}

/// examples/aws/edgeway.yaml as shipped, each `aws:` pointed at the emulator and given the
/// test's keys through the standard variables (the example names none of its own).
#[tokio::test]
async fn the_aws_example_queues_starts_stores_and_reads() {
    let moto = Moto::start().await;
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws/edgeway.yaml"),
    )
    .unwrap()
    .replace(
        "            region: us-east-1\n",
        &format!(
            "            region: us-east-1\n            endpoint: \"{}\"\n",
            moto.endpoint
        ),
    )
    .replace("127.0.0.1:8080", "127.0.0.1:0");
    assert_eq!(example.matches(&moto.endpoint).count(), 4, "{example}");
    let gw = Gateway::builder()
        .env("AWS_ACCESS_KEY_ID", &moto.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret_key)
        .start(&example)
        .await;
    let c = client();

    // moto answers SQS's query protocol in XML, where AWS answers JSON to `Accept:
    // application/json`; the message id is AWS's to map, the 202 is the queue's acceptance.
    let r = c
        .post(gw.url("/prod/orders"))
        .header("content-type", "application/json")
        .body(json!({"id": "o-17", "customer": "ada"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", moto.log_text());

    let r = c
        .post(gw.url("/prod/orders/o-17/fulfil"))
        .header("content-type", "application/json")
        .body(json!({"priority": "high"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body = json_body(r).await;
    assert_eq!(
        body["execution"],
        format!(
            "arn:aws:states:us-east-1:{}:execution:fulfil:order-o-17",
            moto.account
        ),
        "{body}"
    );
    // The same execution name again: Step Functions refuses it, mapped to 409.
    let r = c
        .post(gw.url("/prod/orders/o-17/fulfil"))
        .header("content-type", "application/json")
        .body(json!({"priority": "low"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    let r = c
        .put(gw.url("/prod/items/tea-1"))
        .header("content-type", "application/json")
        .body(json!({"name": "Sencha", "price": 4.5}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(json_body(r).await, json!({"stored": "tea-1"}));
    let r = c.get(gw.url("/prod/items/tea-1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(r).await,
        json!({"id": "tea-1", "name": "Sencha", "price": 4.5})
    );
    let r = c.get(gw.url("/prod/items/tea-2")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_body(r).await, json!({"message": "no item tea-2"}));
}

/// S3, a REST service: the method and path as configured, the body passing through unmapped
/// both ways, signed as S3 wants (its payload hash in `x-amz-content-sha256`).
#[tokio::test]
async fn an_s3_object_is_written_and_read_through_path_routes() {
    let moto = Moto::start().await;
    let routes = format!(
        r#"
      - route: PUT /files/{{name}}
        integration:
          aws:
            service: s3
            path: "uploads/{{name}}"
            method: PUT
            {common_fields}
            request_parameters:
              integration.request.header.Content-Type: method.request.header.Content-Type
      - route: GET /files/{{name}}
        integration:
          aws:
            service: s3
            path: "uploads/{{name}}"
            {common_fields}
"#,
        common_fields = aws_common(&moto),
    );
    let gw = gateway(&moto, &routes).await;
    let c = client();
    let r = c
        .put(gw.url("/prod/files/notes%20one.txt"))
        .header("content-type", "text/plain")
        .body("first line\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", moto.log_text());
    let r = c
        .get(gw.url("/prod/files/notes%20one.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "first line\n");
    let r = c.get(gw.url("/prod/files/absent")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
