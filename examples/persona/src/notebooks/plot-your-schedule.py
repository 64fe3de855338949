# %% [markdown]
# # Plot your schedule before you train
#
# This is the notebook I open before every launch. It renders the learning-rate
# schedule from the launch config, so a typo in `decay_steps` shows up as a
# wrong picture instead of as a wasted week. It caught two config bugs in the
# first month, both before launch.
#
# The schedule is Glimmer-1B's: warmup-stable-decay (WSD) built with cadenza,
# 2,000 warmup steps to a peak of 2e-4, and the decay over the last 10% of steps.

# %%
import matplotlib.pyplot as plt

from cadenza.schedules import render, wsd

TOTAL_STEPS = 381_000
DECAY_STEPS = TOTAL_STEPS // 10
schedule = wsd(peak=2e-4, warmup_steps=2_000, stable_steps=TOTAL_STEPS - 2_000 - DECAY_STEPS,
               decay_steps=DECAY_STEPS)
steps, lrs = render(schedule, total_steps=TOTAL_STEPS, every=500)
print(f"peak {lrs.max():.2e} at step {steps[lrs.argmax()]}, final {lrs[-1]:.2e}")
#| out: peak 2.00e-04 at step 2000, final 0.00e+00

# %% [markdown]
# Look at three things: the warmup ends where you think it ends, the stable
# phase is flat, and the decay reaches the final value on the last step, not
# before it and not after it.

# %%
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(steps, lrs)
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.set_title("Glimmer-1B: WSD schedule")
fig.tight_layout()
#| png: <Figure size 800x300 with 1 Axes>
