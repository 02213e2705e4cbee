use ser_model::layers::Activations;
use ser_model::network::Network;
use std::time::Instant;
fn main() {
    let config = ser_model::ModelConfig::reference();
    let network = Network::new(&config, 174, 40, 8).unwrap();
    let weights = network.init(1);
    let n = 256;
    let x: Vec<f32> = (0..n * 174 * 40).map(|i| ((i * 2654435761usize) % 1000) as f32 / 500.0 - 1.0).collect();
    let per = 174 * 40;
    for chunk in [8usize, 16, 32, 64, 128] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t0 = Instant::now();
            use rayon::prelude::*;
            let _: Vec<Vec<f32>> = x
                .par_chunks(chunk * per)
                .map(|c| {
                    network.infer_cpu(Activations::new(c.len() / per, network.input(), c.to_vec()), &weights).unwrap()
                })
                .collect();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!("chunk {chunk}: {:.1} clips/s", n as f64 / best);
    }
    let t0 = Instant::now();
    for _ in 0..20 {
        let _ = network.infer_cpu(Activations::new(1, network.input(), x[..per].to_vec()), &weights).unwrap();
    }
    println!("1 clip: {:.3} ms", t0.elapsed().as_secs_f64() * 1000.0 / 20.0);
    if std::env::var("PROF_LOOP").is_ok() {
        for _ in 0..200 {
            let _ = network.infer_cpu(Activations::new(16, network.input(), x[..16 * per].to_vec()), &weights).unwrap();
        }
    }
}
