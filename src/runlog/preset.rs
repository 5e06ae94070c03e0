//! The data a preset trains on and is judged on, made (or read) from its [`TrainConfig`].
//! Generated sets are regenerated from the seed; `digits` and `mnist` read their files.

use crate::data::{digits, idx, poly1d, products::ProductsConfig, Task, TaskData, TaskStructure};
use crate::model::train::{TrainConfig, POLY_MEMBERS};
use crate::model::Preset;
use crate::{invalid, Result};

/// Makes (or reads) the data a config trains on, and checks it fits the preset's network.
pub fn preset_data(cfg: &TrainConfig) -> Result<TaskData> {
    let data = match cfg.preset {
        Preset::Products
        | Preset::ProductsPlanted
        | Preset::ProductsGelu
        | Preset::Products64
        | Preset::Products16
        | Preset::ProductsShared => ProductsConfig {
            shared: cfg.preset == Preset::ProductsShared,
            n_train: cfg.n_train,
            seed: cfg.data_seed,
            ..ProductsConfig::default()
        }
        .generate()?,
        Preset::Poly => {
            let family = poly1d::family(&poly1d::FamilyConfig {
                members: POLY_MEMBERS,
                seed: cfg.data_seed,
                ..Default::default()
            });
            let p = &family[cfg.member];
            let name = format!("poly1d/{}", cfg.member);
            TaskData {
                train: poly1d::dataset(
                    p,
                    &format!("{name}/train"),
                    cfg.n_train,
                    cfg.data_seed,
                    300 + cfg.member as u64,
                )?,
                val: poly1d::dataset(
                    p,
                    &format!("{name}/val"),
                    1024,
                    cfg.data_seed,
                    400 + cfg.member as u64,
                )?,
                per_task: vec![],
                tasks: TaskStructure {
                    tasks: vec![Task {
                        name,
                        inputs: vec![0],
                        outputs: vec![0],
                    }],
                },
            }
        }
        Preset::Digits => {
            let all = match &cfg.data_dir {
                Some(path) => digits::read_csv(path)?,
                None => digits::load_all(),
            };
            let (train, val) = digits::train_test(&all);
            TaskData {
                train,
                val,
                per_task: vec![],
                tasks: classes(64),
            }
        }
        Preset::Mnist => {
            let dir = cfg.data_dir.as_deref().expect("validated");
            let (train, val) = idx::load_mnist(dir)?;
            TaskData {
                train,
                val,
                per_task: vec![],
                tasks: classes(784),
            }
        }
    };
    let w = cfg.preset.arch().widths;
    if data.train.d_in != w[0] || data.train.d_out != *w.last().unwrap() {
        invalid!(
            "{}: {} inputs and {} outputs, but preset `{}` takes {} and gives {}",
            data.train.name,
            data.train.d_in,
            data.train.d_out,
            cfg.preset,
            w[0],
            w.last().unwrap()
        );
    }
    Ok(data)
}

fn classes(d_in: usize) -> TaskStructure {
    TaskStructure {
        tasks: vec![Task {
            name: "class".into(),
            inputs: (0..d_in).collect(),
            outputs: (0..10).collect(),
        }],
    }
}
