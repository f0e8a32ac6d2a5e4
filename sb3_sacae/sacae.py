"""SAC-AE as a Stable-Baselines3 algorithm."""

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, unwrap_vec_wrapper
from torch.nn import functional as F

from sb3_sacae.buffers import FrameStackReplayBuffer, check_memory_fits
from sb3_sacae.discrete import (
    AllowDiscreteActions,
    DiscreteCritic,
    discrete_target_entropy,
    expected_log_prob,
    soft_state_value,
)
from sb3_sacae.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SACAEPolicy
from sb3_sacae.serialization import SafeSerializationMixin
from sb3_sacae.torch_layers import (
    ConvTrunk,
    MultiDecoder,
    PixelDecoder,
    Trunk,
    random_shift,
    reconstruction_loss,
)

SelfSACAE = TypeVar("SelfSACAE", bound="SACAE")


class EnvFrameCounter(BaseCallback):
    """Adds each step's ``info["step_env_frames"]`` (from :class:`sb3_sacae.envs.ActionRepeat`) to ``model.env_frames``."""

    def _on_step(self) -> bool:
        self.model._env_frames += sum(int(info.get("step_env_frames", 0)) for info in self.locals["infos"])
        return True


def detect_frame_stack(env: VecEnv | None) -> int | None:
    """Frames stacked per observation: VecFrameStack's n_stack, else the envs' ``frame_stack`` attribute."""
    if env is None:
        return None
    vec_stack = unwrap_vec_wrapper(env, VecFrameStack)
    if vec_stack is not None:
        return int(vec_stack.stacked_obs.n_stack)
    try:
        stacks = set(env.get_attr("frame_stack"))
    except AttributeError:
        return None
    return int(stacks.pop()) if len(stacks) == 1 else None


def check_action_space(action_space: spaces.Space | None) -> None:
    """Raise a clear error for action spaces SACAE cannot act in (None: not known yet)."""
    if action_space is None or isinstance(action_space, spaces.Box):
        return
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"SACAE needs a gymnasium.spaces.Box (continuous SAC) or gymnasium.spaces.Discrete (discrete SAC) action "
            f"space, got {action_space}: flatten MultiDiscrete/MultiBinary/Tuple actions into one Discrete space "
            "with a wrapper (one index per combination), or use a continuous version of the environment"
        )
    if int(action_space.start) != 0 or int(action_space.n) < 2:
        raise ValueError(
            f"SACAE needs a Discrete action space of at least 2 actions starting at 0, got {action_space}: "
            "shift the actions with a gymnasium.ActionWrapper (Stable-Baselines3 assumes start=0)"
        )


class SACAE(SafeSerializationMixin, SAC, AllowDiscreteActions):
    """
    Soft Actor-Critic with a deterministic pixel autoencoder (SAC-AE).

    Paper: Yarats et al. 2019, "Improving Sample Efficiency in Model-Free Reinforcement Learning from Images",
    https://arxiv.org/abs/1910.01741. Reference code: https://github.com/denisyarats/pytorch_sac_ae.
    The defaults are the paper's training-script values (see "The paper's defaults, and where they live" on the design page).

    ``Discrete`` action spaces (e.g. Atari) use discrete SAC (Christodoulou 2019, https://arxiv.org/abs/1910.07207):
    a categorical actor and one Q-value per action, with the soft value, the actor loss and the entropy computed
    exactly over actions, on the same encoders, decoder, update schedule and gradient routing.

    Each gradient step, in the order of the paper's algorithm: critic; every ``actor_update_interval`` steps the
    actor and the entropy coefficient; every ``target_update_interval`` steps the target Q-heads (``tau``) and the
    target encoder (``encoder_tau``); every ``decoder_update_interval`` steps the autoencoder. The conv trunk is
    computed once after the critic step and reused by the actor (detached) and the decoder (attached): the actor
    step changes neither the convs nor the critic head, so this is the paper's computation with one forward less.
    ``reuse_critic_features=True`` drops that forward too: the actor and the reconstruction loss then read the critic's
    forward, from before the critic step (not the paper's exact order; off by default).
    Each batch is converted to the compute dtype and layout once and shared by the three encoder forwards of the
    step (current encoder on obs and next obs, target encoder on next obs): they use different parameters or inputs,
    so none of them can be reused. The decoder's transposed convs run their backward as regular convolutions
    (:class:`~sb3_sacae.accel.deconv.DeconvLayer`, same math), the reconstruction loss is computed in place
    (:func:`~sb3_sacae.torch_layers.reconstruction_loss`) and its dequantisation noise has 8 bits per pixel, drawn 8
    pixels per 64-bit draw (``benchmarks/kernels.py`` times each of these against the plain version).

    :param policy: The policy model to use: "CnnPolicy" (images), "MlpPolicy" (state vectors: MLP autoencoder) or
        "MultiInputPolicy" (Dict observations: image and vector keys, ``encoder_keys`` / ``decoder_keys`` policy_kwargs)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate of the actor and critic Adam optimizers (paper: 1e-3),
        it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer (100_000; the reference script's capacity is 1_000_000, which
        the frame-sharing buffer fits in about 21 GB)
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
        (paper: 1000)
    :param batch_size: Minibatch size for each gradient update (paper: 128)
    :param tau: Polyak coefficient of the target Q-heads (paper: 0.01)
    :param gamma: the discount factor (paper: 0.99)
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``)
        Set to ``-1`` means to do as many gradient steps as steps done in the environment
        during the rollout.
    :param action_noise: the action noise type (None by default; Box actions only)
    :param replay_buffer_class: Replay buffer class to use. If ``None``, it will be automatically selected.
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation.
    :param optimize_memory_usage: Enable a memory efficient variant of SB3's replay buffer
    :param n_steps: n-step returns (SB3's NStepReplayBuffer) when ``n_steps > 1`` (paper: 1)
    :param ent_coef: Entropy regularization coefficient; "auto_0.1" learns it starting from 0.1 (paper)
    :param target_update_interval: update the targets every ``target_update_interval`` gradient steps (paper: 2)
    :param target_entropy: target entropy when learning ``ent_coef``, in nats. "auto": -dim(A) for Box actions
        (paper); 0.98 * ``log |A|`` for Discrete actions (Christodoulou 2019), "auto_<fraction>" for another fraction of
        the maximum entropy ``log |A|`` (Discrete only, e.g. "auto_0.5")
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE; Box actions only)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE
    :param use_sde_at_warmup: Whether to use gSDE instead of uniform sampling during the warm up phase
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (``features_dim``,
        ``n_filters``, ``n_conv_layers``, ``net_arch``, ...)
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param encoder_tau: Polyak coefficient of the target encoder (paper: 0.05, larger than ``tau``)
    :param actor_update_interval: update the actor and the entropy coefficient every this many gradient steps
        (paper: 2)
    :param decoder_update_interval: update the autoencoder every this many gradient steps (paper: 1);
        0 turns the autoencoder off (the paper's "SAC:pixel" baseline)
    :param encoder_lr: learning rate of the encoder on the reconstruction loss (paper: 1e-3)
    :param decoder_lr: learning rate of the decoder (paper: 1e-3)
    :param decoder_latent_lambda: weight of the L2 penalty on the latent, ``mean(0.5 * ||h||^2)`` (paper: 1e-6)
    :param decoder_weight_lambda: L2 weight decay of the decoder (paper: 1e-7)
    :param ent_coef_lr: learning rate of the entropy coefficient (paper: 1e-4)
    :param ent_coef_betas: Adam betas of the entropy coefficient (paper: (0.5, 0.999))
    :param random_shift: DrQ random-shift augmentation of the sampled observations and next observations: pad in
        pixels (DrQ: 4), 0 turns it off (paper). Everything downstream, reconstruction included, sees the shifted images
        (the image keys of Dict observations; state vectors are never shifted)
    :param replay_ratio: gradient steps per environment step (transitions collected over all envs); when set, it
        replaces ``gradient_steps`` (``gradient_steps = replay_ratio * train_freq * n_envs``). The paper uses 1;
        high-ratio training (say 4 to 16) usually pairs with ``policy_kwargs=dict(critic_layer_norm=True)``
    :param bf16_autocast: run the pixel encoder and decoder of ``train()`` in bfloat16 (autocast): conv trunks, the
        projection heads' Linears (conv features -> latent; ``CnnPolicy`` only, ``MultiInputPolicy`` keeps its heads
        float32) and the decoder. LayerNorms, latents, actor and Q-head MLPs, log-probabilities, losses, optimizer
        states and target updates stay float32, and so do state encoders. See the README's speed table
    :param reuse_critic_features: the actor and the reconstruction loss read the encoder forward of the critic's loss
        (conv features and latent from before the critic's optimizer step) instead of a second forward after that
        step: one encoder forward less per gradient step (about 7 % of a step with the paper's settings). Not the
        paper's exact order: the reconstruction gradients are taken at the encoder's parameters before the critic
        step moves them (one Adam step of ``learning_rate`` earlier), and the actor reads those features too. Off by
        default; see the README's speed table for its throughput and learning runs
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "CnnPolicy": CnnPolicy,
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: SACAEPolicy

    def __init__(
        self,
        policy: str | type[SACAEPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 1000,
        batch_size: int = 128,
        tau: float = 0.01,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto_0.1",
        target_update_interval: int = 2,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        encoder_tau: float = 0.05,
        actor_update_interval: int = 2,
        decoder_update_interval: int = 1,
        encoder_lr: float = 1e-3,
        decoder_lr: float = 1e-3,
        decoder_latent_lambda: float = 1e-6,
        decoder_weight_lambda: float = 1e-7,
        ent_coef_lr: float = 1e-4,
        ent_coef_betas: tuple[float, float] = (0.5, 0.999),
        random_shift: int = 0,
        replay_ratio: float | None = None,
        bf16_autocast: bool = False,
        reuse_critic_features: bool = False,
        _init_setup_model: bool = True,
    ):
        for name, interval in (
            ("target_update_interval", target_update_interval),
            ("actor_update_interval", actor_update_interval),
        ):
            if int(interval) < 1:
                raise ValueError(f"{name} must be a positive number of gradient steps, got {interval}")
        check_action_space(getattr(env, "action_space", None))
        if int(decoder_update_interval) < 0:
            raise ValueError(
                f"decoder_update_interval must be >= 0 (0 turns the autoencoder off), got {decoder_update_interval}"
            )
        # AllowDiscreteActions lets SAC.__init__ accept Discrete actions; the model is built below, once the SAC-AE
        # attributes are set
        super().__init__(
            policy,  # type: ignore[arg-type]  # SAC annotates its own SACPolicy; SACAE's policies have its interface
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        if action_noise is not None and isinstance(self.action_space, spaces.Discrete):
            raise ValueError("action_noise needs continuous (Box) actions: discrete SAC explores by sampling its policy")
        self.encoder_tau = encoder_tau
        self.actor_update_interval = int(actor_update_interval)
        self.decoder_update_interval = int(decoder_update_interval)
        self.encoder_lr = encoder_lr
        self.decoder_lr = decoder_lr
        self.decoder_latent_lambda = decoder_latent_lambda
        self.decoder_weight_lambda = decoder_weight_lambda
        self.ent_coef_lr = ent_coef_lr
        self.ent_coef_betas = tuple(ent_coef_betas)
        if int(random_shift) < 0:
            raise ValueError(f"random_shift is a padding in pixels, >= 0 (0 turns it off, DrQ uses 4), got {random_shift}")
        self.random_shift = int(random_shift)
        self.replay_ratio = replay_ratio
        if replay_ratio is not None:
            self.gradient_steps = self._gradient_steps_for(replay_ratio)
        self.bf16_autocast = bf16_autocast
        self.reuse_critic_features = bool(reuse_critic_features)
        self._env_frames = 0
        # Refuse replay buffers that cannot fit in memory when the user builds a model, not when one is loaded
        self._check_buffer_memory = _init_setup_model
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        check_action_space(self.action_space)
        # The policy owns the autoencoder optimizers; their settings are the algorithm's arguments,
        # not user policy_kwargs, so they are passed for construction only.
        owned = {"encoder_lr", "decoder_lr", "decoder_weight_lambda", "use_decoder"} & set(self.policy_kwargs)
        if owned:
            raise ValueError(
                f"{sorted(owned)} are SACAE arguments, not policy_kwargs: pass them to SACAE(...) directly "
                "(use_decoder: decoder_update_interval=0 turns the autoencoder off)"
            )
        self._select_replay_buffer()
        user_policy_kwargs, user_buffer_kwargs = self.policy_kwargs, self.replay_buffer_kwargs
        allow_oversize = bool(user_buffer_kwargs.get("allow_oversize", False)) or not getattr(
            self, "_check_buffer_memory", False
        )
        if self.replay_buffer_class is FrameStackReplayBuffer:
            self.replay_buffer_kwargs = {**user_buffer_kwargs, "allow_oversize": allow_oversize}
        else:  # SB3's buffers take no such argument: check their size here, before numpy allocates them
            self.replay_buffer_kwargs = {k: v for k, v in user_buffer_kwargs.items() if k != "allow_oversize"}
            per_transition = self._sb3_bytes_per_transition()
            what = f"SB3's replay buffer (buffer_size={self.buffer_size:_})"
            check_memory_fits(per_transition * self.buffer_size, per_transition, what, allow_oversize=allow_oversize)
        self.policy_kwargs = {
            **user_policy_kwargs,
            "encoder_lr": self.encoder_lr,
            "decoder_lr": self.decoder_lr,
            "decoder_weight_lambda": self.decoder_weight_lambda,
            "use_decoder": self.decoder_update_interval > 0,
        }
        requested_entropy = self.target_entropy
        if isinstance(requested_entropy, str) and requested_entropy.startswith("auto"):
            self.target_entropy = "auto"  # SAC's own "auto" (-dim(A)) is replaced below for Discrete actions
        try:
            super()._setup_model()
        finally:
            self.policy_kwargs, self.replay_buffer_kwargs = user_policy_kwargs, user_buffer_kwargs
        if isinstance(requested_entropy, str) and requested_entropy.startswith("auto"):
            if isinstance(self.action_space, spaces.Discrete):
                # Discrete SAC: a fraction of the maximum entropy log |A| (arXiv:1910.07207)
                self.target_entropy = discrete_target_entropy(int(self.action_space.n), requested_entropy)
            elif requested_entropy != "auto":
                raise ValueError(
                    f"target_entropy={requested_entropy!r}: 'auto_<fraction>' is for Discrete actions; use 'auto' "
                    "(-dim(A)) or a number for Box actions"
                )
        if self.random_shift and not self._image_spaces():
            raise ValueError(
                f"random_shift={self.random_shift} shifts images, but the observations {self.observation_space} hold "
                "none: pass random_shift=0 for state observations"
            )
        self.ent_coef_betas = tuple(self.ent_coef_betas)  # a JSON list after save/load
        if self.ent_coef_optimizer is not None:
            # SAC-AE's temperature has its own learning rate and Adam betas
            self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.ent_coef_lr, betas=self.ent_coef_betas)
        self._q_params = [p for name, p in self.critic.named_parameters() if not name.startswith("features_extractor.")]
        self._q_target_params = [
            p for name, p in self.critic_target.named_parameters() if not name.startswith("features_extractor.")
        ]
        self._action_repeat = self._read_action_repeat() or getattr(self, "_action_repeat", None)

    def set_parameters(self, load_path_or_dict: Any, exact_match: bool = True, device: th.device | str = "auto") -> None:
        super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)
        # Loaded optimizer states carry the saved hyperparameters; the model's attributes (which load()'s
        # custom_objects and kwargs may change) are the ones in force
        settings = [
            (self.policy.encoder_optimizer, {"lr": self.encoder_lr}),
            (self.policy.decoder_optimizer, {"lr": self.decoder_lr, "weight_decay": self.decoder_weight_lambda}),
            (self.ent_coef_optimizer, {"lr": self.ent_coef_lr, "betas": tuple(self.ent_coef_betas)}),
        ]
        for optimizer, values in settings:
            for group in optimizer.param_groups if optimizer is not None else []:
                group.update(values)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset=force_reset)
        self._action_repeat = self._read_action_repeat()
        if self.replay_ratio is not None:
            self.gradient_steps = self._gradient_steps_for(self.replay_ratio)

    def _select_replay_buffer(self) -> None:
        """Frame-stacked image observations default to the buffer that stores each frame once."""
        if self.replay_buffer_class is not None or self.optimize_memory_usage or self.n_steps > 1:
            return
        frame_stack = detect_frame_stack(self.env)
        if frame_stack is not None and frame_stack > 1 and isinstance(self.observation_space, spaces.Box):
            self.replay_buffer_class = FrameStackReplayBuffer
            self.replay_buffer_kwargs = {"frame_stack": frame_stack, **self.replay_buffer_kwargs}

    def _gradient_steps_for(self, replay_ratio: float) -> int:
        """Gradient steps per rollout that give ``replay_ratio`` gradient steps per collected transition."""
        if not isinstance(self.train_freq, int) and not (isinstance(self.train_freq, tuple) and self.train_freq[1] == "step"):
            raise ValueError(f"replay_ratio needs train_freq counted in steps, got {self.train_freq}")
        frequency = self.train_freq if isinstance(self.train_freq, int) else int(self.train_freq[0])
        transitions = frequency * self.n_envs
        steps = replay_ratio * transitions
        if replay_ratio <= 0 or steps < 1 or abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"replay_ratio={replay_ratio} with train_freq={frequency} and {self.n_envs} env(s) gives {steps} gradient "
                "steps per rollout: choose train_freq so that replay_ratio * train_freq * n_envs is a positive integer"
            )
        return round(steps)

    def _sb3_bytes_per_transition(self) -> int:
        """Bytes SB3's ReplayBuffer/DictReplayBuffer use per transition: obs (twice unless optimized), action, 3 floats."""
        obs_spaces = (
            self.observation_space.spaces.values()
            if isinstance(self.observation_space, spaces.Dict)
            else [self.observation_space]
        )
        obs_bytes = sum(int(np.prod(space.shape)) * space.dtype.itemsize for space in obs_spaces)  # type: ignore[misc]
        if isinstance(self.action_space, spaces.Discrete):
            action_bytes = np.dtype(self.action_space.dtype).itemsize  # one index, stored in the space's dtype
        else:
            action_bytes = int(np.prod(self.action_space.shape)) * 4  # float32
        return obs_bytes * (1 if self.optimize_memory_usage else 2) + action_bytes + 3 * 4

    def _read_action_repeat(self) -> float | None:
        """Mean action repeat of the envs (None without an action-repeat wrapper), to count environment frames."""
        if self.env is None:
            return None
        try:
            repeats = self.env.get_attr("action_repeat")
        except AttributeError:
            return None
        return float(np.mean(repeats))

    @property
    def env_frames(self) -> int:
        """
        Environment frames simulated so far (papers on DeepMind Control count these): the sum of
        ``info["step_env_frames"]`` reported by :class:`sb3_sacae.envs.ActionRepeat`, else agent steps
        times the envs' ``action_repeat`` attribute, else agent steps.
        """
        return self._env_frames or int(self.num_timesteps * (self._action_repeat or 1))

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # Count frames first: SB3 calls the user's callbacks before its own per-step bookkeeping
        if callback is None:
            callbacks: list[BaseCallback] = []
        elif isinstance(callback, list):
            callbacks = callback
        else:
            callbacks = [callback if isinstance(callback, BaseCallback) else ConvertCallback(callback)]
        return super()._init_callback([EnvFrameCounter(), *callbacks], progress_bar)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ):
        if reset_num_timesteps:
            self._env_frames = 0
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        critic_losses, actor_losses, ent_coef_losses, ent_coefs = [], [], [], []
        ae_losses, latent_losses, q_values, entropies = [], [], [], []

        encoder, critic_head = self.policy.encoder, self.critic.features_extractor.head
        target_encoder = self.critic_target.features_extractor
        compute_dtype = th.bfloat16 if self.bf16_autocast else th.float32
        discrete = isinstance(self.action_space, spaces.Discrete)
        for gradient_step in range(gradient_steps):
            step = self._n_updates + gradient_step
            if self.use_sde:
                self.actor.reset_noise()  # log_std may have changed since the last gradient step
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            ent_coef = th.exp(self.log_ent_coef.detach()) if self.log_ent_coef is not None else self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            observations, next_observations = data.observations, data.next_observations
            if self.random_shift:
                # DrQ: shift obs and next obs independently; every loss below sees the shifted images
                observations, next_observations = self._shift(observations), self._shift(next_observations)
            if isinstance(encoder, ConvTrunk):
                # Raw pixels change layout once (uint8): the conv input and the reconstruction target both read them
                observations = encoder.in_layout(observations)
            # Each batch is converted and normalised once; every encoder forward below reuses it
            pixels = encoder.preprocess(observations, compute_dtype)
            next_pixels = encoder.preprocess(next_observations, compute_dtype)

            # 1. Critic: soft Bellman target from the target critic and the current actor
            with th.no_grad():
                next_features = self._head(self.actor.features_extractor.head, self._conv(encoder, next_pixels))
                next_latent = self._head(target_encoder.head, self._conv(target_encoder.trunk, next_pixels))
                if discrete:
                    # Discrete SAC: the expectation over next actions is exact, not a sample (arXiv:1910.07207, eq. 10)
                    next_log_probs = self.actor.log_probs_from_features(next_features)
                    next_q_all = self.critic_target.q_values_from_features(next_latent)
                    next_q = soft_state_value(next_log_probs, next_q_all, ent_coef)
                else:
                    next_actions, next_log_prob = self.actor.action_log_prob_from_features(next_features)
                    next_q = self._q_values(self.critic_target, next_latent, next_actions).min(dim=1, keepdim=True).values
                    next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            current_conv = self._conv(encoder, pixels)
            current_latent = self._head(critic_head, current_conv)
            current_q = self._q_values(self.critic, current_latent, data.actions)
            # Sum over the twin Q-heads, as in the reference code
            critic_loss = sum(F.mse_loss(q, target_q) for q in current_q.split(1, dim=1))
            critic_losses.append(self._finite("critic loss", critic_loss))  # type: ignore[arg-type]

            update_actor = step % self.actor_update_interval == 0
            update_decoder = self.policy.decoder is not None and step % self.decoder_update_interval == 0
            autoencoder_grads = None
            if update_decoder and self.reuse_critic_features:
                # reuse_critic_features: the reconstruction gradients of the critic's forward, taken before the critic
                # step moves the encoder (its graph is kept for the critic's backward)
                autoencoder_loss = self._autoencoder_loss(current_latent, observations, ae_losses, latent_losses)
                parameters = self._autoencoder_params
                grads = th.autograd.grad(autoencoder_loss, parameters, retain_graph=True, allow_unused=True)
                autoencoder_grads = list(zip(parameters, grads, strict=True))
            self.critic.optimizer.zero_grad()
            critic_loss.backward()  # type: ignore[union-attr]
            self._step(self.critic.optimizer, "critic")
            q_values.append(current_q.detach().float().mean().item())

            if self.reuse_critic_features:
                conv, latent = current_conv, current_latent
            elif update_actor or update_decoder:
                # Conv features after the critic step, with a graph only if the decoder will train them
                with th.set_grad_enabled(update_decoder):
                    conv = self._conv(encoder, pixels)
                    latent = self._head(critic_head, conv)

            # 2. Actor and entropy coefficient, on detached conv features: the actor never moves the convs.
            # For Discrete actions log_prob is the exact E_pi[log pi] = -H(pi), so the alpha loss is alpha (H - target)
            if update_actor:
                actor_loss, log_prob = self._actor_loss(conv, latent, ent_coef)
                actor_losses.append(self._finite("actor loss", actor_loss))
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self._step(self.actor.optimizer, "actor")
                entropies.append(-log_prob.detach().mean().item())

                if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                    # Loss on alpha itself, as in the reference code (SB3 uses log alpha)
                    ent_coef_loss = (self.log_ent_coef.exp() * (-log_prob - self.target_entropy).detach()).mean()
                    ent_coef_losses.append(self._finite("entropy coefficient loss", ent_coef_loss))
                    self.ent_coef_optimizer.zero_grad()
                    ent_coef_loss.backward()
                    self._step(self.ent_coef_optimizer, "entropy coefficient")

            # 3. Targets: Q-heads slowly (tau), the target encoder faster (encoder_tau)
            if step % self.target_update_interval == 0:
                polyak_update(self._q_params, self._q_target_params, self.tau)
                polyak_update(self.critic.features_extractor.parameters(), target_encoder.parameters(), self.encoder_tau)

            # 4. Autoencoder: reconstruct the 5-bit dequantised frames (and/or states) from the critic's latent (paper
            # section 6)
            if update_decoder:
                autoencoder_optimizers = {"encoder": self.policy.encoder_optimizer, "decoder": self.policy.decoder_optimizer}
                for optimizer in autoencoder_optimizers.values():
                    optimizer.zero_grad()  # type: ignore[union-attr]
                if autoencoder_grads is None:
                    self._autoencoder_loss(latent, observations, ae_losses, latent_losses).backward()
                else:
                    for parameter, grad in autoencoder_grads:
                        parameter.grad = grad
                self._check_gradients(autoencoder_optimizers)  # both, before either optimizer moves
                for optimizer in autoencoder_optimizers.values():
                    optimizer.step()  # type: ignore[union-attr]

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/q_value", np.mean(q_values))
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
            self.logger.record("train/entropy", np.mean(entropies))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        if ae_losses:
            self.logger.record("train/ae_loss", np.mean(ae_losses))
            self.logger.record("train/latent_loss", np.mean(latent_losses))
        if self._action_repeat is not None:
            self.logger.record("train/env_frames", self.env_frames)

    def _autoencoder_loss(
        self,
        latent: th.Tensor,
        observations: th.Tensor | dict[str, th.Tensor],
        ae_losses: list[float],
        latent_losses: list[float],
    ) -> th.Tensor:
        """Reconstruction loss plus ``decoder_latent_lambda`` times the latent's L2 penalty; logs both parts."""
        with self._autocast():
            reconstruction = self.policy.decoder(latent)  # type: ignore[misc]
        ae_loss = self._reconstruction_loss(reconstruction, observations)
        latent_loss = (0.5 * latent.pow(2).sum(dim=1)).mean()
        ae_losses.append(self._finite("reconstruction loss", ae_loss))
        latent_losses.append(self._finite("latent loss", latent_loss))
        return ae_loss + self.decoder_latent_lambda * latent_loss

    @property
    def _autoencoder_params(self) -> list[th.Tensor]:
        """The parameters the encoder and decoder optimizers step (what the reconstruction loss trains)."""
        optimizers = (self.policy.encoder_optimizer, self.policy.decoder_optimizer)
        return [
            p for optimizer in optimizers if optimizer is not None for group in optimizer.param_groups for p in group["params"]
        ]

    def _finite(self, quantity: str, value: th.Tensor) -> float:
        """The loss as a float; raise, naming the update and the quantity, before a non-finite loss is used."""
        number = value.item()
        if not np.isfinite(number):
            raise FloatingPointError(
                f"SACAE: the {quantity} is {number} at gradient step {self._n_updates + 1} (agent step "
                f"{self.num_timesteps}); training stopped before any parameter became non-finite. Check the rewards "
                "and observations (NaN/inf), lower the learning rates or use float32 (bf16_autocast=False)"
            )
        return number

    def _check_gradients(self, optimizers: dict[str, th.optim.Optimizer | None]) -> None:
        """Raise before a step when a gradient is not finite (a finite loss can still overflow in backward)."""
        for name, optimizer in optimizers.items():
            grads = [p.grad for group in (optimizer.param_groups if optimizer else []) for p in group["params"]]
            grads = [grad for grad in grads if grad is not None]
            if grads and not th.isfinite(th.stack(th._foreach_norm(grads))).all():  # one fused call for all norms
                raise FloatingPointError(
                    f"SACAE: non-finite {name} gradients at gradient step {self._n_updates + 1} (agent step "
                    f"{self.num_timesteps}); training stopped before any parameter became non-finite"
                )

    def _step(self, optimizer: th.optim.Optimizer, name: str) -> None:
        self._check_gradients({name: optimizer})
        optimizer.step()

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        # Refuse non-finite data before it reaches the replay buffer (and, through it, the losses)
        arrays = {"reward": reward, "observation": new_obs}
        if isinstance(new_obs, dict):
            arrays.update({f"observation[{key!r}]": value for key, value in new_obs.items()})
        for quantity, array in arrays.items():
            if isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise FloatingPointError(
                    f"SACAE: non-finite {quantity} from the environment at agent step {self.num_timesteps}: fix the "
                    "environment or wrap it (e.g. gymnasium.wrappers.TransformReward / TransformObservation)"
                )
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        for name, parameter in self.policy.named_parameters():
            if not th.isfinite(parameter).all():
                raise FloatingPointError(f"SACAE.save: parameter {name} is not finite; refusing to save a broken model")
        super().save(path, exclude=exclude, include=include)

    def _autocast(self) -> th.autocast:
        """bfloat16 autocast for the conv and deconv work when ``bf16_autocast`` is on, a no-op otherwise."""
        return th.autocast(device_type=self.device.type, dtype=th.bfloat16, enabled=self.bf16_autocast)

    def _conv(self, trunk: Trunk, pixels: Any) -> th.Tensor:
        """
        Trunk features of a preprocessed batch: float32, or the convs' bfloat16 under ``bf16_autocast`` with a conv
        trunk (its bfloat16 projection head reads them as they are, saving two casts per forward).
        """
        with self._autocast():
            if isinstance(trunk, ConvTrunk):
                return trunk.conv_features(pixels, dtype=None if self._bf16_heads else th.float32)
            return trunk.conv_features(pixels)

    @property
    def _bf16_heads(self) -> bool:
        return bool(self.bf16_autocast) and isinstance(self.policy.encoder, ConvTrunk)

    def _head(self, head: Any, conv: th.Tensor) -> th.Tensor:
        """
        The float32 latent of a :class:`ProjectionHead`. Under ``bf16_autocast`` with a conv encoder its Linear (conv
        features -> latent, the largest matmul of the update) runs in bfloat16: its input already holds bfloat16 conv
        outputs, so only the weight, the bias and the Linear's output are rounded; LayerNorm and tanh run in float32.
        State encoders (``MlpPolicy``, Dict policies) keep their heads in float32.
        """
        return head(conv, bf16_linear=self._bf16_heads)

    def _image_spaces(self) -> dict[str | None, spaces.Box]:
        """The image (3D Box) observation spaces by Dict key (None for a Box observation space)."""
        named: list[tuple[str | None, spaces.Space]] = (
            list(self.observation_space.spaces.items())
            if isinstance(self.observation_space, spaces.Dict)
            else [(None, self.observation_space)]
        )
        return {key: space for key, space in named if isinstance(space, spaces.Box) and len(space.shape) == 3}

    def _shift(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor | dict[str, th.Tensor]:
        """DrQ random shift of the images of a batch (every image key of a Dict, each independently)."""
        if isinstance(observations, dict):
            images = self._image_spaces()
            return {key: random_shift(v, self.random_shift) if key in images else v for key, v in observations.items()}
        return random_shift(observations, self.random_shift)

    def _reconstruction_loss(self, reconstruction: Any, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        """
        MSE of the decoder's output against its target: the 5-bit dequantised frames for images (paper section 6),
        the state itself for vectors; with a Dict decoder, the sum over the decoded keys.
        """
        decoder = self.policy.decoder
        if not isinstance(decoder, MultiDecoder):
            return self._key_reconstruction_loss(decoder, reconstruction, observations, self.observation_space)  # type: ignore[arg-type]
        losses = [
            self._key_reconstruction_loss(key_decoder, reconstruction[key], observations[key], self.observation_space[key])  # type: ignore[index]
            for key, key_decoder in decoder.decoders.items()
        ]
        return th.stack(losses).sum()

    def _key_reconstruction_loss(
        self, decoder: Any, reconstruction: th.Tensor, observations: th.Tensor, space: spaces.Box
    ) -> th.Tensor:
        if isinstance(decoder, PixelDecoder):
            return reconstruction_loss(reconstruction, self._raw_pixels(observations, space))
        return F.mse_loss(reconstruction.float(), observations.float().flatten(start_dim=1))

    def _raw_pixels(self, observations: th.Tensor, space: spaces.Box | None = None) -> th.Tensor:
        """Images of ``space`` (default: the observation space) on the [0, 255] pixel scale the 5-bit target expects."""
        if self.policy.normalize_images:
            return observations
        space = self.observation_space if space is None else space  # type: ignore[assignment]
        # Pre-normalised images: rescale from the observation space's bounds
        low, high = float(np.min(space.low)), float(np.max(space.high))  # type: ignore[union-attr]
        return (observations.float() - low) * (255.0 / (high - low))

    @staticmethod
    def _q_values(critic: ContinuousCritic | DiscreteCritic, latent: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-values of every head for encoder latents (what ``critic(obs, actions)`` computes), shape (batch, n)."""
        if isinstance(critic, DiscreteCritic):
            return critic.q_at_actions(latent, actions)  # replay buffers store the action index as (batch, 1)
        q_input = th.cat([latent, actions.to(latent.dtype)], dim=1)
        return th.cat([q_net(q_input) for q_net in critic.q_networks], dim=1)

    def _actor_loss(self, conv: th.Tensor, latent: th.Tensor, ent_coef: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        Actor loss from the shared conv features and the critic's latent, both read detached: only the actor's
        projection head and MLP receive its gradient. The Q-heads are evaluated with their parameters frozen, so the
        backward skips their weight gradients (the reference code computes them, and the critic's ``zero_grad``
        clears them unused before its next backward).

        :return: the loss and the log-probabilities of the sampled actions, shape (batch, 1); for Discrete actions
            the exact expectation E_pi[log pi(a|s)] = -H(pi(.|s)) instead
        """
        if isinstance(self.critic, DiscreteCritic):
            # SAC-AE: the actor must not move the shared convs; only critic and decoder train them
            log_probs = self.actor.log_probs_from_features(self._head(self.actor.features_extractor.head, conv.detach()))
            with self._frozen(self._q_params):
                q_values = self.critic.q_values_from_features(latent.detach())
            # Discrete SAC actor loss, exact over actions: sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_i(s, a)]
            return -soft_state_value(log_probs, q_values, ent_coef).mean(), expected_log_prob(log_probs)
        # SAC-AE: the actor must not move the shared convs; only critic and decoder train them
        features = self._head(self.actor.features_extractor.head, conv.detach())
        actions_pi, log_prob = self.actor.action_log_prob_from_features(features)
        log_prob = log_prob.reshape(-1, 1)
        with self._frozen(self._q_params):
            min_q_pi = self._q_values(self.critic, latent.detach(), actions_pi).min(dim=1, keepdim=True).values
        return (ent_coef * log_prob - min_q_pi).mean(), log_prob

    @staticmethod
    @contextlib.contextmanager
    def _frozen(parameters: list[th.Tensor]) -> Iterator[None]:
        """Parameters that require gradients stop requiring them inside the block (graphs built there skip them)."""
        frozen = [parameter for parameter in parameters if parameter.requires_grad]
        for parameter in frozen:
            parameter.requires_grad_(False)
        try:
            yield
        finally:
            for parameter in frozen:
                parameter.requires_grad_(True)

    def learn(
        self: SelfSACAE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SACAE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSACAE:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        # tune_malloc: a constructor argument of earlier releases, set on models loaded from their files
        excluded = ["_q_params", "_q_target_params", "_check_buffer_memory", "tune_malloc"]
        return [*super()._excluded_save_params(), *excluded]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.policy.decoder is not None:
            state_dicts += ["policy.encoder_optimizer", "policy.decoder_optimizer"]
        return state_dicts, variables
