"""The model families whose training steps differ from the plain GAN step, in sizes a test runs in seconds: shared
by the CUDA graph tests on the CPU's emulator (tests/test_cuda_graphs.py) and on a GPU (tests/test_gpu.py)."""

# StyleGAN2 with every regulariser lazy at 2 (R1, path length) and style mixing; ProGAN growing through all its
# phases by step 5 (batch 8: 4x4 at step 1, the 8x8 fade at 2, 8x8 at 3, the 16x16 fade at 4, 16x16 from 5).
STYLEGAN2 = ["model=stylegan2", "stabilizers=[path_length]", "stabilizers.path_length.every=2", "loss.r1=1.0",
             "loss.reg_every=2", "trainer.ema_half_life=100"]  # fmt: skip
PROGAN = ["model=progan", "trainer.grow.stable_images=8", "trainer.grow.fade_images=8", "trainer.ema=0.9"]
# SRGAN's G pre-trained for 5 steps (its own graph), then the game with the perceptual term inside the graphs
SRGAN = ["model=srresnet", "data=super_resolution", "data.image_size=16", "content=perceptual",
         "content.network=digits", "trainer.pretrain_steps=5"]  # fmt: skip
# SimGAN's refiner with its history buffer of refined images, read and written inside D's graph
SIMGAN = ["model=refiner", "data=unpaired", "+data.synthetic_options.n=100", "content=self_regularization",
          "trainer.history_buffer.size=16"]  # fmt: skip
FAMILIES = {"stylegan2": STYLEGAN2, "progan": PROGAN, "srgan": SRGAN, "simgan": SIMGAN}
