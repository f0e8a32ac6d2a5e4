"""SAC-AE as a Stable-Baselines3 algorithm: SB3's SAC with a pixel autoencoder, updated in the paper's order."""

import warnings
from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer

# BaseCallback and VecEnv (imported as themselves): SB3's GymEnv and MaybeCallback name them as strings, which the API
# docs resolve in this module
from stable_baselines3.common.callbacks import BaseCallback as BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.common.vec_env import VecEnv as VecEnv
from torch.nn import functional as F

from sb3_sacae import guards
from sb3_sacae.accel.bf16 import bf16_fallback_warning, bf16_kernels_available
from sb3_sacae.accel.sync_free import deferred_checks_apply, set_fused
from sb3_sacae.batch import Batch, SharedForward, first_rows, repeat_rows
from sb3_sacae.collection import CollectionMixin
from sb3_sacae.discrete import AllowDiscreteActions
from sb3_sacae.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SACAEPolicy
from sb3_sacae.serialization import SafeSerializationMixin
from sb3_sacae.settings import (
    check_action_space,
    check_arguments,
    check_policy_kwargs,
    check_random_shift,
    gradient_steps_for,
    sac_arguments,
    target_entropy_for,
)
from sb3_sacae.torch_layers import frozen, image_space_keys, shift_images

SelfSACAE = TypeVar("SelfSACAE", bound="SACAE")

# Train-time log keys, recorded (as means over the call's gradient steps) in this order when present
TRAIN_LOG_KEYS = ("ent_coef", "critic_loss", "q_value", "actor_loss", "entropy", "ent_coef_loss", "ae_loss", "latent_loss")


class SACAE(SafeSerializationMixin, CollectionMixin, SAC, AllowDiscreteActions):
    """
    Soft Actor-Critic with a deterministic pixel autoencoder (SAC-AE).

    Paper: Yarats et al. 2019, "Improving Sample Efficiency in Model-Free Reinforcement Learning from Images",
    https://arxiv.org/abs/1910.01741. Reference code: https://github.com/denisyarats/pytorch_sac_ae.
    The defaults are the paper's training-script values (see "The paper's defaults, and where they live" on the design page).

    ``Discrete`` action spaces (e.g. Atari) use discrete SAC (Christodoulou 2019, https://arxiv.org/abs/1910.07207):
    a categorical actor and one Q-value per action, with the soft value, the actor loss and the entropy computed
    exactly over actions, on the same encoders, decoder, update schedule and gradient routing.

    Each gradient step follows the paper's algorithm (:meth:`train`): critic; every ``actor_update_interval`` steps the
    actor and the entropy coefficient; every ``target_update_interval`` steps the target Q-heads (``tau``) and the
    target encoder (``encoder_tau``); every ``decoder_update_interval`` steps the autoencoder.

    :param policy: The policy model to use: "CnnPolicy" (images), "MlpPolicy" (state vectors: MLP autoencoder) or
        "MultiInputPolicy" (Dict observations: image and vector keys, ``encoder_keys`` / ``decoder_keys`` policy_kwargs)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate of the actor and critic Adam optimizers (paper: 1e-3),
        it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer (100_000; the reference script's capacity is 1_000_000, which
        the frame-sharing buffer fits in about a sixth of the memory of SB3's)
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
    :param critic_shifts: DrQ's M: the critic's loss is the mean of its losses on this many independently shifted
        copies of the sampled observations (1: one copy, as DrQ's K=1, M=1; DrQ's published runs use 2). Needs
        ``random_shift``; the actor and the decoder read the first copy
    :param target_shifts: DrQ's K: the critic's target is the mean of the soft Bellman targets of this many
        independently shifted copies of the next observations (DrQ's published runs use 2). Needs ``random_shift``
    :param replay_ratio: gradient steps per environment step (transitions collected over all envs); when set, it
        replaces ``gradient_steps`` (``gradient_steps = replay_ratio * train_freq * n_envs``). The paper uses 1;
        high-ratio training (say 4 to 16) usually pairs with ``policy_kwargs=dict(critic_layer_norm=True)``
    :param bf16_autocast: run the pixel encoder and decoder of ``train()`` in bfloat16 (autocast): conv trunks, the
        projection heads' Linears (``CnnPolicy`` only) and the decoder; latents, MLPs, losses, optimizer states and
        target updates stay float32, and so do state encoders (see the design page). Fast only on hardware with
        bfloat16 kernels: where oneDNN has none for the CPU or the GPU lacks native bfloat16, ``learn()`` warns
        (:func:`~sb3_sacae.accel.bf16.bf16_kernels_available`; the speed page)
    :param reuse_critic_features: the actor and the reconstruction loss read the encoder forward of the critic's loss,
        from before the critic's optimizer step, instead of a second forward after it: one encoder forward less per
        gradient step, not the paper's exact order (off by default; the speed page shows its runs)
    :param fast_kernels: use the speed pieces of :mod:`sb3_sacae.accel` where the device suits them (oneDNN Linears,
        channels-last convs, the transposed convs' backward as convolutions, the sliced reconstruction loss, fused
        gradient norms); False runs plain torch layers and functions only: the same math, up to float32 rounding
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "CnnPolicy": CnnPolicy,
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: SACAEPolicy  # type: ignore[assignment]  # SAC annotates its own SACPolicy; SACAE's policies have its interface

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
        critic_shifts: int = 1,
        target_shifts: int = 1,
        replay_ratio: float | None = None,
        bf16_autocast: bool = False,
        reuse_critic_features: bool = False,
        fast_kernels: bool = True,
        _init_setup_model: bool = True,
    ):
        arguments = {name: value for name, value in locals().items() if name not in ("self", "__class__")}
        check_arguments(arguments)
        # SB3's own SAC.__init__ sets every SAC attribute (AllowDiscreteActions admits Discrete actions); the model is
        # built below, once the SAC-AE attributes are set
        super().__init__(**{**sac_arguments(arguments), "_init_setup_model": False})
        if action_noise is not None and isinstance(self.action_space, spaces.Discrete):
            raise ValueError("action_noise needs continuous (Box) actions: discrete SAC explores by sampling its policy")
        self._set_sacae_settings(arguments)
        self._env_frames = 0
        self._check_buffer_memory = _init_setup_model
        if _init_setup_model:
            self._setup_model()

    def _set_sacae_settings(self, arguments: dict[str, Any]) -> None:
        """The SAC-AE arguments as attributes (checked by :func:`~sb3_sacae.settings.check_arguments`)."""
        self.encoder_tau = arguments["encoder_tau"]
        self.actor_update_interval = int(arguments["actor_update_interval"])
        self.decoder_update_interval = int(arguments["decoder_update_interval"])
        self.encoder_lr = arguments["encoder_lr"]
        self.decoder_lr = arguments["decoder_lr"]
        self.decoder_latent_lambda = arguments["decoder_latent_lambda"]
        self.decoder_weight_lambda = arguments["decoder_weight_lambda"]
        self.ent_coef_lr = arguments["ent_coef_lr"]
        self.ent_coef_betas = arguments["ent_coef_betas"]
        self.random_shift = int(arguments["random_shift"])
        self.critic_shifts = int(arguments["critic_shifts"])
        self.target_shifts = int(arguments["target_shifts"])
        self.replay_ratio = arguments["replay_ratio"]
        self.bf16_autocast = arguments["bf16_autocast"]
        self.reuse_critic_features = bool(arguments["reuse_critic_features"])
        self.fast_kernels = bool(arguments["fast_kernels"])

    def _setup_model(self) -> None:
        check_action_space(self.action_space)
        # Python numbers, from the constructor or from load()'s keywords and file alike (betas are a JSON list after
        # save/load): numpy scalars would reach the optimizers' saved state, which torch's safe loading refuses
        for name in (
            "encoder_tau",
            "encoder_lr",
            "decoder_lr",
            "decoder_latent_lambda",
            "decoder_weight_lambda",
            "ent_coef_lr",
        ):
            setattr(self, name, float(getattr(self, name)))
        beta1, beta2 = self.ent_coef_betas
        self.ent_coef_betas = (float(beta1), float(beta2))
        self.bf16_autocast = bool(self.bf16_autocast)
        if self.replay_ratio is not None:
            # From the envs of now: a loaded model may have another number of envs than the one that saved it
            self.gradient_steps = gradient_steps_for(self.replay_ratio, self.train_freq, self.n_envs)
        check_policy_kwargs(self.policy_kwargs)
        user_policy_kwargs = self.policy_kwargs
        # Algorithm arguments that shape the policy, passed to it for construction only (not saved as policy_kwargs):
        # decoder_update_interval=0 builds no decoder, fast_kernels=False plain torch layers
        use_decoder = self.decoder_update_interval > 0
        self.policy_kwargs = {**user_policy_kwargs, "use_decoder": use_decoder, "fast_kernels": self.fast_kernels}
        requested_entropy = self.target_entropy
        if isinstance(requested_entropy, str) and requested_entropy.startswith("auto"):
            self.target_entropy = "auto"  # SAC's own "auto" (-dim(A)) is replaced below for Discrete actions
        try:
            super()._setup_model()
        finally:
            self.policy_kwargs = user_policy_kwargs
        self.target_entropy = target_entropy_for(requested_entropy, self.action_space, self.target_entropy)
        check_random_shift(self.random_shift, self.observation_space)
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            # SAC-AE's temperature has its own learning rate and Adam betas
            self.ent_coef_optimizer = th.optim.Adam(
                [self.log_ent_coef], lr=self.ent_coef_lr, betas=self.ent_coef_betas, fused=self._fused_temperature()
            )
        self.encoder_optimizer: th.optim.Optimizer | None = None
        self.decoder_optimizer: th.optim.Optimizer | None = None
        if self.policy.decoder is not None:
            # The reconstruction loss trains the critic's encoder (shared trunk + critic head) with its own optimizer,
            # and the decoder with another one whose weight decay is the paper's L2 penalty on the decoder weights
            self.encoder_optimizer = self.policy.make_optimizer(self.critic.features_extractor.parameters(), self.encoder_lr)
            decoder_parameters = self.policy.decoder.parameters()
            self.decoder_optimizer = self.policy.make_optimizer(
                decoder_parameters, self.decoder_lr, weight_decay=self.decoder_weight_lambda
            )
        self._q_params = [p for name, p in self.critic.named_parameters() if not name.startswith("features_extractor.")]
        self._q_target_params = [
            p for name, p in self.critic_target.named_parameters() if not name.startswith("features_extractor.")
        ]

    def set_parameters(self, load_path_or_dict: Any, exact_match: bool = True, device: th.device | str = "auto") -> None:
        """
        Load parameters like SB3's ``set_parameters``: a path or file is read and checked as :meth:`load` reads it
        (:meth:`sb3_sacae.serialization.SafeSerializationMixin.set_parameters`), then set as a dict.
        """
        if not isinstance(load_path_or_dict, dict):
            super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)  # reads, then calls this
            return
        # Files of earlier versions keep the autoencoder optimizers on the policy
        renamed = {f"policy.{name}": name for name in ("encoder_optimizer", "decoder_optimizer")}
        params = {renamed.get(name, name): value for name, value in load_path_or_dict.items()}
        super().set_parameters(params, exact_match=exact_match, device=device)
        # Loaded optimizer states carry the saved hyperparameters; the model's attributes (which load()'s
        # custom_objects and kwargs may change) are the ones in force
        settings: list[tuple[th.optim.Optimizer | None, dict[str, Any]]] = [
            (self.encoder_optimizer, {"lr": self.encoder_lr}),
            (self.decoder_optimizer, {"lr": self.decoder_lr, "weight_decay": self.decoder_weight_lambda}),
            (self.ent_coef_optimizer, {"lr": self.ent_coef_lr, "betas": tuple(self.ent_coef_betas)}),
        ]
        for optimizer, values in settings:
            for group in optimizer.param_groups if optimizer is not None else []:
                group.update(values)
        if self.ent_coef_optimizer is not None:
            # Fused as this machine builds it, whatever machine or version saved it
            set_fused(self.ent_coef_optimizer, self._fused_temperature())

    def _fused_temperature(self) -> bool | None:
        """
        Whether the temperature's optimizer is fused: where the update's finite checks are deferred (they skip only
        fused steps) and the networks' optimizers are fused. Elsewhere torch's default, as in the reference code.
        """
        return deferred_checks_apply(self.device, [self.critic.optimizer]) or None

    # --- The update, in the order of the paper's algorithm ------------------------------------------------------

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        logs = self._train_record()
        for _ in range(gradient_steps):
            self._gradient_step(batch_size, logs)
        means = logs.close()  # deferred checks raise here
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key in TRAIN_LOG_KEYS:
            if key in means:
                self.logger.record(f"train/{key}", means[key])
        if self._action_repeat is not None:
            self.logger.record("train/env_frames", self.env_frames)

    def _gradient_step(self, batch_size: int, logs: guards.TrainRecord) -> None:
        """One gradient step of every network due, in the paper's order."""
        if self.use_sde:
            self.actor.reset_noise()  # log_std may have changed since the last gradient step
        batch = self._sample(batch_size)
        ent_coef = th.exp(self.log_ent_coef.detach()) if self.log_ent_coef is not None else self.ent_coef_tensor
        logs.log("ent_coef", ent_coef)
        update_actor = self._n_updates % self.actor_update_interval == 0
        update_autoencoder = self.policy.decoder is not None and self._n_updates % self.decoder_update_interval == 0

        # 1. Critic: soft Bellman target from the target critic and the current actor; returns the encoder forward
        # that the actor and the decoder read
        shared = self._update_critic(batch, ent_coef, update_actor, update_autoencoder, logs)
        # 2. Actor and entropy coefficient, on detached trunk features: the actor never moves the convs
        if update_actor:
            self._update_actor_and_alpha(shared, ent_coef, logs)
        # 3. Targets: Q-heads slowly (tau), the target encoder faster (encoder_tau)
        if self._n_updates % self.target_update_interval == 0:
            self._update_targets()
        # 4. Autoencoder: reconstruct the observations from the critic's latent (paper section 6)
        if update_autoencoder:
            self._update_autoencoder(shared, batch, logs)
        self._n_updates += 1

    def _sample(self, batch_size: int) -> Batch:
        """A replay batch, DrQ-shifted when ``random_shift`` is on, prepared once in the compute dtype."""
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        observations, next_observations = data.observations, data.next_observations
        if self.random_shift:
            # DrQ: shift obs and next obs independently, each sample of each copy with its own offset (M copies of the
            # obs for the critic's loss, K of the next obs for its target); every loss below sees shifted images
            pad, space = self.random_shift, self.observation_space
            observations = shift_images(repeat_rows(observations, self.critic_shifts), pad, space)
            next_observations = shift_images(repeat_rows(next_observations, self.target_shifts), pad, space)
        trunk = self.policy.trunk
        # Raw pixels change layout once: the trunk's input and the reconstruction target both read them
        observations = trunk.in_layout(observations)
        compute_dtype = th.bfloat16 if self.bf16_autocast else th.float32
        pixels = trunk.preprocess(observations, compute_dtype)
        next_pixels = trunk.preprocess(next_observations, compute_dtype)
        discounts = data.discounts if data.discounts is not None else self.gamma
        # The reconstruction target is the first copy, the one the decoder reads
        target = first_rows(observations, batch_size)
        return Batch(target, pixels, next_pixels, data.actions, data.rewards, data.dones, discounts, compute_dtype)

    def _critic_forward(self, pixels: Any) -> SharedForward:
        """The shared trunk's features and the critic's latent of prepared observations."""
        trunk_features = self.policy.trunk.features(pixels)
        return SharedForward(trunk_features, self.policy.critic.features_extractor.latent(trunk_features))

    def _update_critic(
        self, batch: Batch, ent_coef: th.Tensor, update_actor: bool, update_autoencoder: bool, logs: guards.TrainRecord
    ) -> SharedForward:
        """
        One step of the twin Q-heads and the critic's encoder on the soft Bellman error.

        :return: the encoder forward the actor and the decoder read: a new one after the critic step (the paper's
            order), or with ``reuse_critic_features`` the critic's own
        """
        with th.no_grad():
            target_q = batch.rewards + (1 - batch.dones) * batch.discounts * self._next_soft_value(batch, ent_coef)
        forward = self._critic_forward(batch.pixels)
        # critic_shifts copies of the batch: each copy's loss against the same target, averaged (DrQ's M)
        actions, target_q = repeat_rows(batch.actions, self.critic_shifts), repeat_rows(target_q, self.critic_shifts)
        current_q = self.policy.critic.q_at_actions(forward.latent, actions)
        # Sum over the twin Q-heads, as in the reference code
        q_losses = [F.mse_loss(q, target_q) for q in current_q.split(1, dim=1)]
        critic_loss = sum(q_losses[1:], q_losses[0])
        logs.loss("critic_loss", "critic loss", critic_loss, self._n_updates + 1)
        # The actor and the decoder read the first copy
        forward = SharedForward(first_rows(forward.trunk_features, batch.size), first_rows(forward.latent, batch.size))
        if self.reuse_critic_features and update_autoencoder:
            # The reconstruction gradients of this forward, taken before the critic step moves the encoder (its
            # graph is kept for the critic's backward)
            forward.autoencoder_grads = self._autoencoder_grads(forward.latent, batch, logs)
        self._optimize(self.critic.optimizer, critic_loss, "critic", logs)
        logs.log("q_value", current_q.detach().float().mean())
        if self.reuse_critic_features or not (update_actor or update_autoencoder):
            return forward
        # The trunk after the critic step, read by the actor (detached) and by the decoder (with a graph only if it
        # trains): the actor's step moves neither, so one forward serves both
        with th.set_grad_enabled(update_autoencoder):
            return self._critic_forward(batch.first_pixels)

    def _next_soft_value(self, batch: Batch, ent_coef: th.Tensor) -> th.Tensor:
        """
        The soft value of the next states: the current actor's policy, valued by the target critic on the target
        encoder's latent (a sample of the actor for Box actions, the exact expectation for Discrete ones). With
        ``target_shifts`` copies of the next observations, the mean over the copies (DrQ's K).
        """
        actor, critic_target = self.policy.actor, self.policy.critic_target
        next_features = actor.features_extractor.latent(self.policy.trunk.features(batch.next_pixels))
        target_encoder = critic_target.features_extractor
        next_latent = target_encoder.latent(target_encoder.trunk.features(batch.next_pixels))
        next_value, _ = actor.soft_value(next_features, critic_target, next_latent, ent_coef)
        if self.target_shifts == 1:
            return next_value
        return next_value.view(self.target_shifts, batch.size, -1).mean(dim=0)

    def _update_actor_and_alpha(self, shared: SharedForward, ent_coef: th.Tensor, logs: guards.TrainRecord) -> None:
        """
        Actor: maximise the soft value of its own actions, on the shared trunk's features read detached (its
        encoder detaches them: only the actor's projection head and MLP learn from this loss). Then alpha: the
        entropy moves towards ``target_entropy``.
        """
        actor_loss, log_prob = self._actor_loss(shared, ent_coef)
        logs.loss("actor_loss", "actor loss", actor_loss, self._n_updates + 1)
        self._optimize(self.actor.optimizer, actor_loss, "actor", logs)
        # For Discrete actions log_prob is the exact E_pi[log pi] = -H(pi), so the alpha loss is alpha (H - target)
        logs.log("entropy", -log_prob.detach().mean())
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            # Loss on alpha itself, as in the reference code (SB3 uses log alpha)
            ent_coef_loss = (self.log_ent_coef.exp() * (-log_prob - float(self.target_entropy)).detach()).mean()
            logs.loss("ent_coef_loss", "entropy coefficient loss", ent_coef_loss, self._n_updates + 1)
            self._optimize(self.ent_coef_optimizer, ent_coef_loss, "entropy coefficient", logs)

    def _actor_loss(self, shared: SharedForward, ent_coef: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        Minus the soft value of the actor's policy, ``-E[min_i Q_i(s, a) - alpha log pi(a|s)]``, and the log-probabilities
        (for Discrete actions the exact E_pi[log pi(a|s)] = -H(pi(.|s))), both of shape (batch, 1).
        """
        features = self.policy.actor.features_extractor.latent(shared.trunk_features)
        # The Q-heads are evaluated with their parameters frozen, so the backward skips their weight gradients
        # (the reference code computes them, and the critic's zero_grad clears them unused)
        with frozen(self._q_params):
            value, log_prob = self.policy.actor.soft_value(features, self.critic, shared.latent.detach(), ent_coef)
        return -value.mean(), log_prob

    def _update_targets(self) -> None:
        """Polyak averages: the target Q-heads with ``tau``, the target encoder faster with ``encoder_tau``."""
        polyak_update(self._q_params, self._q_target_params, self.tau)
        polyak_update(
            self.critic.features_extractor.parameters(), self.critic_target.features_extractor.parameters(), self.encoder_tau
        )

    def _update_autoencoder(self, shared: SharedForward, batch: Batch, logs: guards.TrainRecord) -> None:
        """One step of the critic's encoder and the decoder on the reconstruction loss of the critic's latent."""
        optimizers = self._autoencoder_optimizers()
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        if shared.autoencoder_grads is None:
            loss = self._autoencoder_loss(shared.latent, batch, logs)
            loss.backward()
        else:
            loss, grads = shared.autoencoder_grads
            for parameter, grad in grads:
                parameter.grad = grad
        logs.step(dict(optimizers), self._n_updates + 1, losses=[loss])  # both checked before either moves

    def _autoencoder_optimizers(self) -> dict[str, th.optim.Optimizer]:
        """The encoder and decoder optimizers (models with decoder_update_interval=0 have none)."""
        if self.encoder_optimizer is None or self.decoder_optimizer is None:
            raise ValueError("This model has no autoencoder (decoder_update_interval=0): it has nothing to reconstruct")
        return {"encoder": self.encoder_optimizer, "decoder": self.decoder_optimizer}

    def _autoencoder_loss(self, latent: th.Tensor, batch: Batch, logs: guards.TrainRecord) -> th.Tensor:
        """
        The decoder's reconstruction loss (its own target: 5-bit dequantised frames for images, the states for
        vectors) plus ``decoder_latent_lambda`` times the latent's L2 penalty ``mean(0.5 * ||h||^2)`` (paper section 6).
        """
        if self.policy.decoder is None:
            raise ValueError("This model has no decoder (decoder_update_interval=0): it has nothing to reconstruct")
        ae_loss = self.policy.decoder.reconstruction_loss(latent, batch.observations, batch.compute_dtype)
        latent_loss = (0.5 * latent.pow(2).sum(dim=1)).mean()
        logs.loss("ae_loss", "reconstruction loss", ae_loss, self._n_updates + 1)
        logs.loss("latent_loss", "latent loss", latent_loss, self._n_updates + 1)
        return ae_loss + self.decoder_latent_lambda * latent_loss

    def _autoencoder_grads(
        self, latent: th.Tensor, batch: Batch, logs: guards.TrainRecord
    ) -> tuple[th.Tensor, list[tuple[th.Tensor, th.Tensor | None]]]:
        """
        The autoencoder loss, and its gradients for the encoder and decoder optimizers' parameters (the graph kept).
        """
        optimizers = self._autoencoder_optimizers().values()
        parameters = [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]]
        loss = self._autoencoder_loss(latent, batch, logs)
        grads = th.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        return loss.detach(), list(zip(parameters, grads, strict=True))

    # --- Helpers of the update ----------------------------------------------------------------------------------

    def _optimize(self, optimizer: th.optim.Optimizer, loss: th.Tensor, name: str, logs: guards.TrainRecord) -> None:
        """zero_grad, backward, and a step once the gradients are known to be finite."""
        optimizer.zero_grad()
        loss.backward()
        logs.step({name: optimizer}, self._n_updates + 1, losses=[loss])

    def _train_record(self) -> guards.TrainRecord:
        """
        The log and finite checks of one ``train()`` call: deferred to its end where the accel seam selects it
        (:func:`~sb3_sacae.accel.sync_free.deferred_checks_apply`), read before each step everywhere else.
        """
        optimizers = [
            self.actor.optimizer,
            self.critic.optimizer,
            self.ent_coef_optimizer,
            self.encoder_optimizer,
            self.decoder_optimizer,
        ]
        deferred = self.fast_kernels and deferred_checks_apply(self.device, optimizers)
        return guards.TrainRecord(self.num_timesteps, deferred=deferred, fast=self.fast_kernels)

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        guards.check_parameters(self.policy)
        super().save(path, exclude=exclude, include=include)

    def learn(
        self: SelfSACAE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SACAE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSACAE:
        # bf16_autocast runs the pixel trunk and decoder of train() only (state encoders stay float32): a model that
        # trains images on hardware without bfloat16 kernels is told, where its training starts, how to stop it
        if self.bf16_autocast and image_space_keys(self.observation_space) and not bf16_kernels_available(self.device):
            warnings.warn(bf16_fallback_warning(self.device), UserWarning, stacklevel=2)
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    def _excluded_save_params(self) -> list[str]:
        # tune_malloc: a constructor argument of earlier releases, set on models loaded from their files
        excluded = ["_q_params", "_q_target_params", "_check_buffer_memory", "tune_malloc"]
        return [*super()._excluded_save_params(), *excluded]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.policy.decoder is not None:
            state_dicts += ["encoder_optimizer", "decoder_optimizer"]
        return state_dicts, variables
