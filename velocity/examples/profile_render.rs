//! Renders the bench template N times (for a profiler): `cargo run --release --example
//! profile_render -p edgeway-velocity -- 2000`.
#[path = "../benches/velocity.rs"]
#[allow(dead_code)]
mod bench;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let limits = edgeway_velocity::Limits::default();
    let template = edgeway_velocity::Template::parse(bench::TEMPLATE, &limits).expect("parses");
    let input = std::rc::Rc::new(bench::input());
    let mut total = 0;
    for _ in 0..n {
        total += edgeway_velocity::aws::render(&template, &input)
            .map(|r| r.body.len())
            .unwrap_or(0);
    }
    println!("{total}");
}
