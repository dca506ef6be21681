"""The remedies GAN training relies on, one module each; train.py and build.py compose them from the config.

ema.py (trainer.ema), lr_schedule.py (trainer.lr_schedule_g/_d), critic_schedule.py (trainer.n_critic_schedule),
penalties.py (loss.r1 / loss.r2 with loss.reg_every), spectral_norm.py (model.spectral_norm),
augment.py (augment.diffaugment, augment.instance_noise). Minibatch standard deviation is a layer:
ganlab/models/minibatch_std.py. Label smoothing belongs to the losses that have labels (gan, minimax, lsgan);
gradient-norm clipping (trainer.clip_grad_norm) is one call in the loop.

The stabilisers that plug in by config alone implement base.Stabilizer's hooks and are chosen with
`stabilizers=[name, ...]` (conf/stabilizers/<name>.yaml): consistency.py (consistency regularisation).
"""
