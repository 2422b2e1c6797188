//! Parsing a realistic 2 KB request template, and rendering it over a 4 KiB JSON body: the
//! cost a mapped request pays natively (the component adds the call into WebAssembly).

use criterion::{Criterion, criterion_group, criterion_main};
use edgeway_velocity::aws::{self, MappingInput, Params};
use edgeway_velocity::{Limits, Template};

/// The shape of template API Gateway users write for a Lambda or Step Functions backend:
/// the body, every parameter, the stage variables and the caller's context.
pub const TEMPLATE: &str = r##"## Forwards the request, its parameters and who called to the backend.
#set($allParams = $input.params())
#set($root = $input.path('$'))
{
  "body-json" : $input.json('$'),
  "order" : {
    "id" : "$util.escapeJavaScript($root.order.id)",
    "customer" : "$util.escapeJavaScript($root.order.customer.name).replaceAll("\\'","'")",
    "total" : $root.order.total,
    "lines" : [
#foreach($line in $root.order.lines)
      { "sku" : "$line.sku", "qty" : $line.qty, "price" : $line.price }#if($foreach.hasNext),#end

#end
    ],
    "express" : #if($root.order.shipping.method == "express")true#else false#end,
    "shipping" : {
      "method" : "$util.escapeJavaScript($root.order.shipping.method).toUpperCase()",
      "address" : "$util.escapeJavaScript($root.order.shipping.address)",
      "email" : "$util.escapeJavaScript($root.order.customer.email).replaceAll("\\'","'")"
    },
    #set($large = 0)
#foreach($line in $root.order.lines)
#if($line.qty > 5)#set($large = $large + 1)#end
#end
    "large-lines" : $large,
    "dry-run" : #if($input.params('dryRun') == "true")true#else false#end
  },
  "params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
    "$type" : {
#foreach($paramName in $params.keySet())
      "$paramName" : "$util.escapeJavaScript($params.get($paramName))"#if($foreach.hasNext),#end

#end
    }#if($foreach.hasNext),#end

#end
  },
  "stage-variables" : {
#foreach($key in $stageVariables.keySet())
    "$key" : "$util.escapeJavaScript($stageVariables.get($key))"#if($foreach.hasNext),#end

#end
  },
  "context" : {
    "account-id" : "$context.identity.accountId",
    "api-id" : "$context.apiId",
    "api-key" : "$context.identity.apiKey",
    "authorizer-principal-id" : "$context.authorizer.principalId",
    "caller" : "$context.identity.caller",
    "http-method" : "$context.httpMethod",
    "stage" : "$context.stage",
    "source-ip" : "$context.identity.sourceIp",
    "user-agent" : "$context.identity.userAgent",
    "request-id" : "$context.requestId",
    "resource-path" : "$context.resourcePath"
  }
}
#set($context.requestOverride.header.X-Order-Lines = "$root.order.lines.size()")
"##;

/// A 4 KiB order document.
pub fn body() -> String {
    let lines: Vec<String> = (0..62)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","qty":{},"price":{}.99,"note":"line {i}"}}"#,
                i % 7 + 1,
                i * 3 + 1
            )
        })
        .collect();
    let body = format!(
        r#"{{"order":{{"id":"ord-8842","customer":{{"name":"Ada O'Neil","email":"ada@example.com"}},"total":1234.5,"shipping":{{"method":"express","address":"1 Main St"}},"lines":[{}]}}}}"#,
        lines.join(",")
    );
    assert!(
        (3_500..=4_700).contains(&body.len()),
        "body is {} bytes",
        body.len()
    );
    body
}

pub fn input() -> MappingInput {
    let mut params = Params::default();
    params.path.insert("orderId".into(), "ord-8842".into());
    params.querystring.insert("dryRun".into(), "false".into());
    for (k, v) in [
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("User-Agent", "curl/8.5.0"),
        ("X-Request-Id", "6f1c0a"),
    ] {
        params.header.insert(k.into(), v.into());
    }
    let context = serde_json::json!({
        "apiId": "orders", "stage": "prod", "httpMethod": "POST", "requestId": "c0ffee",
        "resourcePath": "/orders/{orderId}",
        "identity": {"sourceIp": "192.0.2.1", "userAgent": "curl/8.5.0", "apiKey": "", "accountId": "", "caller": ""},
        "authorizer": {"principalId": "alice"}
    });
    MappingInput {
        body: body(),
        params,
        context: context.to_string(),
        stage_variables: [("backend".to_owned(), "orders.internal".to_owned())]
            .into_iter()
            .collect(),
    }
}

fn benches(c: &mut Criterion) {
    assert!(
        (1_800..=2_400).contains(&TEMPLATE.len()),
        "template is {} bytes",
        TEMPLATE.len()
    );
    let limits = Limits::default();
    c.bench_function("velocity/parse 2 KB template", |b| {
        b.iter(|| Template::parse(std::hint::black_box(TEMPLATE), &limits))
    });
    let template = Template::parse(TEMPLATE, &limits).expect("the bench template parses");
    let input = std::rc::Rc::new(input());
    let rendered = aws::render(&template, &input).expect("the bench template renders");
    serde_json::from_str::<serde_json::Value>(&rendered.body).expect("the render is JSON");
    c.bench_function("velocity/render over 4 KiB JSON", |b| {
        b.iter(|| aws::render(&template, std::hint::black_box(&input)))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
