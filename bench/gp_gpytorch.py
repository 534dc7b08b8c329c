# GPyTorch exact GP (default BBMM settings) on the same data as bench/gp.R:
# diamonds, log(price) ~ carat, depth, table (standardized), Gaussian (RBF)
# ARD kernel, constant mean, Adam(lr=0.1) for `iters` steps as in GPyTorch's
# examples. Run: python bench/gp_gpytorch.py data.csv N [iters]  (2 threads;
# GP_DTYPE=float32 runs in single precision, default float64)
import sys, time, math
import os
import numpy as np, torch, gpytorch
torch.set_num_threads(2)
dtype = {"float64": torch.float64, "float32": torch.float32}[os.environ.get("GP_DTYPE", "float64")]
path, N = sys.argv[1], int(float(sys.argv[2]))
iters = int(sys.argv[3]) if len(sys.argv) > 3 else 50
D = np.loadtxt(path, delimiter=",", skiprows=1)
Xte, yte = torch.tensor(D[:5000, :3], dtype=dtype), torch.tensor(D[:5000, 3], dtype=dtype)
X, y = torch.tensor(D[5000:5000 + N, :3], dtype=dtype), torch.tensor(D[5000:5000 + N, 3], dtype=dtype)
class GP(gpytorch.models.ExactGP):
    def __init__(self, x, y, lik):
        super().__init__(x, y, lik)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=3))
    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))
lik = gpytorch.likelihoods.GaussianLikelihood()
model = GP(X, y, lik).to(dtype); lik = lik.to(dtype)
t0 = time.time()
model.train(); lik.train()
opt = torch.optim.Adam(model.parameters(), lr=0.1)
mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
with gpytorch.settings.max_cholesky_size(0):
    for i in range(iters):
        opt.zero_grad(); loss = -mll(model(X), y); loss.backward(); opt.step()
    t_fit = time.time() - t0
    model.eval(); lik.eval(); t1 = time.time()
    with torch.no_grad(), gpytorch.settings.fast_pred_var():
        pred = lik(model(Xte))
        mu, sd = pred.mean, pred.variance.sqrt()
    t_pred = time.time() - t1
rmse = float(((mu - yte) ** 2).mean().sqrt())
nlpd = float((0.5 * torch.log(2 * math.pi * sd ** 2) + 0.5 * ((yte - mu) / sd) ** 2).mean())
print(f"gpytorch,{dtype},N={N},iters={iters},fit_s={t_fit:.1f},predict_s={t_pred:.1f},rmse={rmse:.4f},nlpd={nlpd:.4f},"
      f"lengthscale={model.covar_module.base_kernel.lengthscale.detach().numpy().ravel()},"
      f"outputscale={float(model.covar_module.outputscale):.4f},noise={float(lik.noise):.4f}")
